"""tfx-preflight: a TFX gate between ExampleGen and Trainer that blocks training on train/eval skew, leakage or a
broken loss."""

from tfx_preflight.config import ConfigError, LabelProxyConfig, LeakageConfig, LossConfig, PreflightConfig, SkewConfig

__version__ = '0.3.0'

__all__ = ['ConfigError', 'LabelProxyConfig', 'LeakageConfig', 'LossConfig', 'Preflight', 'PreflightBlessing', 'PreflightConfig',
           'PreflightReport', 'SkewConfig', 'TrainHashes', 'earlier_train_hashes']


def __getattr__(name):
  # The component pulls in TFX's orchestration stack; import it only when asked for, so `tfx_preflight.config`
  # and the checks stay cheap to import in subprocesses and tests.
  if name == 'Preflight':
    from tfx_preflight.component import Preflight
    return Preflight
  if name == 'earlier_train_hashes':
    from tfx_preflight.component import earlier_train_hashes
    return earlier_train_hashes
  if name in ('PreflightBlessing', 'PreflightReport', 'TrainHashes'):
    # TFX's container entrypoints (Kubeflow v2) import custom artifact classes by `tfx_preflight.<TYPE>` name.
    from tfx_preflight import artifacts
    return getattr(artifacts, name)
  raise AttributeError(name)
