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
