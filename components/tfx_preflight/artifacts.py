"""The gate's output artifact types.

No standard TFX artifact fits a cross-check report or a training gate, so these are custom; their TYPE_NAMEs follow
the `<namespace>.<Name>` form that KubeflowV2DagRunner requires of custom artifact types.
"""

from tfx.types import artifact

from tfx_preflight import constants


class PreflightReport(artifact.Artifact):
  """A directory holding report.json, report.html and the per-check detail files (e.g. the duplicates list)."""
  TYPE_NAME = constants.REPORT_TYPE_NAME


class PreflightBlessing(artifact.Artifact):
  """Carries the int custom property `blessed` (1: training may proceed, 0: blocked), like ModelBlessing."""
  TYPE_NAME = constants.BLESSING_TYPE_NAME


class TrainHashes(artifact.Artifact):
  """Content hashes of the train examples a blessed run let Trainer train on (16 bytes each, sharded `.npy` files and
  a manifest): later runs join their eval against them without reading those examples again. Int custom property
  `blessed`; a run that did not bless leaves the manifest only (no hashes: nothing was trained on)."""
  TYPE_NAME = constants.TRAIN_HASHES_TYPE_NAME
