"""PreflightSpec: the component's inputs, outputs and parameters, with their keys as module constants."""

from tfx.types import component_spec, standard_artifacts

from tfx_preflight.artifacts import PreflightBlessing, PreflightReport

EXAMPLES_KEY = 'examples'
STATISTICS_KEY = 'statistics'
SCHEMA_KEY = 'schema'
TRANSFORM_GRAPH_KEY = 'transform_graph'
HYPERPARAMETERS_KEY = 'hyperparameters'
REPORT_KEY = 'report'
BLESSING_KEY = 'blessing'
CONFIG_KEY = 'config'
MODULE_FILE_KEY = 'module_file'

BLESSED_PROPERTY = 'blessed'


class PreflightSpec(component_spec.ComponentSpec):
  """Examples in; a report and a blessing out. Everything else is optional."""

  PARAMETERS = {
      # One JSON-encoded PreflightConfig (see config.py), decoded and validated in one place.
      CONFIG_KEY: component_spec.ExecutionParameter(type=str),
      # The Trainer's module file, for the loss check.
      MODULE_FILE_KEY: component_spec.ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      EXAMPLES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples),
      STATISTICS_KEY: component_spec.ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True),
      SCHEMA_KEY: component_spec.ChannelParameter(type=standard_artifacts.Schema, optional=True),
      TRANSFORM_GRAPH_KEY: component_spec.ChannelParameter(type=standard_artifacts.TransformGraph, optional=True),
      HYPERPARAMETERS_KEY: component_spec.ChannelParameter(type=standard_artifacts.HyperParameters, optional=True),
  }
  OUTPUTS = {
      REPORT_KEY: component_spec.ChannelParameter(type=PreflightReport),
      BLESSING_KEY: component_spec.ChannelParameter(type=PreflightBlessing),
  }
