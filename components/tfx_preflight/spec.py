"""PreflightSpec: the component's inputs, outputs and parameters, with their keys as module constants."""

from tfx.types import component_spec, standard_artifacts

from tfx_preflight import constants
from tfx_preflight.artifacts import PreflightBlessing, PreflightReport, TrainHashes

EXAMPLES_KEY = 'examples'
STATISTICS_KEY = 'statistics'
SCHEMA_KEY = 'schema'
TRANSFORM_GRAPH_KEY = 'transform_graph'
HYPERPARAMETERS_KEY = 'hyperparameters'
REPORT_KEY = 'report'
BLESSING_KEY = 'blessing'
CONFIG_KEY = 'config'
MODULE_FILE_KEY = 'module_file'
RUN_FN_KEY = 'run_fn'
CUSTOM_CONFIG_KEY = 'custom_config'
TRANSFORMED_EXAMPLES_KEY = 'transformed_examples'
MODULE_FOLDER_FINGERPRINT_KEY = 'module_folder_fingerprint'
HISTORY_KEY = 'history'
TRAIN_HASHES_KEY = 'train_hashes'
EXAMPLE_STATISTICS_KEY = 'example_statistics'

BLESSED_PROPERTY = constants.BLESSED_PROPERTY


class PreflightSpec(component_spec.ComponentSpec):
  """Examples in; a report and a blessing out. Everything else is optional."""

  PARAMETERS = {
      # One JSON-encoded PreflightConfig (see config.py), decoded and validated in one place.
      CONFIG_KEY: component_spec.ExecutionParameter(type=str),
      # The Trainer's module file, for the loss check.
      MODULE_FILE_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      # As Trainer takes them: a function name in module_file, or a dotted path 'package.module.run_fn'.
      RUN_FN_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      # Trainer's custom_config, JSON-encoded as Trainer encodes it; the loss check passes it in FnArgs.
      CUSTOM_CONFIG_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      # A hash of the .py files beside module_file, which Trainer packages with it: TFX's cache key holds module_file's
      # text only, so without it an edited sibling (where the loss often lives) would reuse a stale blessing.
      MODULE_FOLDER_FINGERPRINT_KEY: component_spec.ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      EXAMPLES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples),
      STATISTICS_KEY: component_spec.ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True),
      SCHEMA_KEY: component_spec.ChannelParameter(type=standard_artifacts.Schema, optional=True),
      TRANSFORM_GRAPH_KEY: component_spec.ChannelParameter(type=standard_artifacts.TransformGraph, optional=True),
      HYPERPARAMETERS_KEY: component_spec.ChannelParameter(type=standard_artifacts.HyperParameters, optional=True),
      # What Trainer reads after Transform: the loss check's train_files/eval_files (skew and leakage use `examples`).
      TRANSFORMED_EXAMPLES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples, optional=True),
      # Earlier runs' train_hashes (e.g. the latest N, through a resolver): eval is joined with them too.
      HISTORY_KEY: component_spec.ChannelParameter(type=TrainHashes, optional=True),
  }
  OUTPUTS = {
      REPORT_KEY: component_spec.ChannelParameter(type=PreflightReport),
      BLESSING_KEY: component_spec.ChannelParameter(type=PreflightBlessing),
      # This run's train hashes, kept when it blesses (save_train_hashes=True).
      TRAIN_HASHES_KEY: component_spec.ChannelParameter(type=TrainHashes, optional=True),
      # The statistics the read pass computed, laid out as StatisticsGen's output (output_statistics=True), so
      # SchemaGen can read them instead of StatisticsGen's. Not `statistics`: that is the input's key.
      EXAMPLE_STATISTICS_KEY: component_spec.ChannelParameter(type=standard_artifacts.ExampleStatistics,
                                                              optional=True),
  }
