"""TFX's own Trainer (GenericExecutor.Do) on a module, in this process: the oracle the loss check's verdict is compared
with. Run as `python -m tests.real_trainer MODULE EXAMPLES_DIR TRANSFORM_GRAPH OUT [STEPS]` in a process launched with
the environment under test; exit 0 when Trainer trained and saved the model, 1 with the error's last line otherwise."""

import os
import sys


def train(module_file: str, examples_dir: str, transform_graph: str, out: str, steps: int) -> None:
  from tfx.components.trainer import executor
  from tfx.proto import trainer_pb2
  from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
  from tfx.utils import proto_utils
  examples = standard_artifacts.Examples()
  examples.uri = examples_dir
  examples.split_names = artifact_utils.encode_split_names(['train', 'eval'])
  graph = standard_artifacts.TransformGraph()
  graph.uri = transform_graph
  model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
  model.uri, model_run.uri = os.path.join(out, 'model'), os.path.join(out, 'model_run')
  executor.GenericExecutor().Do(
      input_dict={standard_component_specs.EXAMPLES_KEY: [examples],
                  standard_component_specs.TRANSFORM_GRAPH_KEY: [graph]},
      output_dict={standard_component_specs.MODEL_KEY: [model], standard_component_specs.MODEL_RUN_KEY: [model_run]},
      exec_properties={
          standard_component_specs.MODULE_FILE_KEY: module_file,
          standard_component_specs.TRAIN_ARGS_KEY: proto_utils.proto_to_json(trainer_pb2.TrainArgs(num_steps=steps)),
          standard_component_specs.EVAL_ARGS_KEY: proto_utils.proto_to_json(trainer_pb2.EvalArgs(num_steps=2))})


def main(argv) -> int:
  module_file, examples_dir, transform_graph, out = argv[:4]
  try:
    train(module_file, examples_dir, transform_graph, out, int(argv[4]) if len(argv) > 4 else 4)
  except Exception as e:  # The verdict the gate is compared with: Trainer failed.
    print(f'TRAINER FAILED: {type(e).__name__}: {" ".join(str(e).split())[:300]}', flush=True)
    return 1
  print('TRAINER TRAINED', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
