"""The README's pipeline snippet runs against the real constructor and compiles into a valid TFX IR with the Cond."""

import os
import re
import runpy

from tfx import v1 as tfx
from tfx.dsl.compiler import compiler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _snippet() -> str:
  text = open(os.path.join(ROOT, 'README.md'), encoding='utf-8').read()
  match = re.search(r'<!-- README-SNIPPET[^>]*-->\s*```python\n(.*?)```', text, re.S)
  assert match, 'README.md lost its tested snippet marker'
  return match.group(1)


def test_readme_snippet_builds_a_pipeline_that_compiles(tmp_path):
  script = tmp_path / 'snippet.py'
  script.write_text(_snippet())
  namespace = runpy.run_path(str(script), init_globals={'data_root': str(tmp_path / 'data'),
                                                        'module_file': str(tmp_path / 'trainer.py')})
  pipeline = tfx.dsl.Pipeline(pipeline_name='readme', pipeline_root=str(tmp_path / 'root'),
                              components=namespace['components'])
  ir = compiler.Compiler().compile(pipeline)
  nodes = {n.pipeline_node.node_info.id: n.pipeline_node for n in ir.nodes}
  assert 'Preflight' in nodes
  trainer_inputs = nodes['Trainer'].inputs
  assert trainer_inputs.conditionals, 'Trainer must be guarded by the Preflight blessing'
  condition = str(list(trainer_inputs.conditionals.values())[0])
  assert 'blessed' in condition
