"""The loss check in report.html: what the probe found about the module and the numbers behind the findings.
Fed by the report's loss dict; every cell escaped."""

from __future__ import annotations

from typing import Any, Mapping

from tfx_preflight import constants
from tfx_preflight.checks.loss.real_batch import FIT_LOSS_FELL, FIT_TIME_BUDGET
from tfx_preflight.report.render.escape import esc, number

# Why the fit of one batch ran fewer steps than loss.fit_steps.
_FIT_STOPPED = {FIT_LOSS_FELL: ' (stopped once the loss fell)', FIT_TIME_BUDGET: ' (stopped by its time budget)'}


def render_html(result: Mapping[str, Any]) -> str:
  """What the probe found about the module and the numbers behind the findings; every cell escaped."""
  if result.get('status') == constants.SKIPPED:
    return ''
  info = result.get('info') or {}
  m = result.get('measurements') or {}
  raw = [('module', result.get('module_file')), ('run_fn', info.get('run_fn')), ('Keras', info.get('keras')),
         ('why this Keras', info.get('keras_source')), ('model Keras', info.get('model_keras')),
         ('model builder', info.get('model_fn')),
         ('input function', info.get('input_fn')), ('loss', info.get('loss')),
         ('output activation', info.get('output_activation')), ('loss from_logits', info.get('loss_from_logits')),
         ('label layout', info.get('layout')), ('output units', info.get('output_units')),
         ('fit calls followed', info.get('fit_calls')), ('training', info.get('training')),
         ('weights fit applies', '; '.join(str(w) for w in info.get('fit_weights') or []) or None)]
  synthetic = m.get('loss_on_synthetic_predictions') or {}
  raw += [(f'loss on {kind} predictions', synthetic.get(kind)) for kind in ('perfect', 'random', 'inverted')]
  raw += [('loss of perfect predictions against other labels', m.get('loss_with_other_labels')),
          ('initial loss (fresh model, train batch)', m.get('initial_loss')),
          ('expected initial loss', m.get('expected_initial_loss'))]
  cells = [(esc(k), number(v)) for k, v in raw if v is not None]
  cells += _validation_cells(result)
  fit = m.get('fit_batch') or {}
  if fit:
    stopped = _FIT_STOPPED.get(fit.get('stopped_because'), '')
    steps = fit.get('steps')
    cells.append((esc(f'one train batch, before -> after {steps} step{"" if steps == 1 else "s"}{stopped}'),
                  f'{number(fit.get("before"))} &rarr; {number(fit.get("after"))}'))
  for split, values in sorted((m.get('eval_path') or {}).items()):
    cells.append((esc(f'{split}: model.evaluate vs loss from model(x)'),
                  f'{number(values.get("evaluate"))} vs {number(values.get("direct"))}'))
  body = ''.join(f'<tr><th>{k}</th><td>{v}</td></tr>' for k, v in cells)
  return f'<h3>Loss probe</h3><table>{body}</table>'


def _validation_cells(result: Mapping[str, Any]) -> list:
  """What model.fit validates on: its files, one pass's examples and batches ('not counted': endless, or Trainer's
  eval_steps decide), or why it validates on nothing."""
  if 'validation_files' not in result:
    return []
  info = result.get('info') or {}
  files = result.get('validation_files') or []
  cells = [(esc('validation reads'), esc(', '.join(files)) if files else esc(info.get('eval_path') or 'no files'))]
  for key, label in (('validation_examples', 'validation examples (one pass)'),
                     ('validation_batches', 'validation batches (one pass)')):
    value = result.get(key)
    cells.append((esc(label), number(value) if value is not None else esc('not counted')))
  if info.get('validation_steps') is not None:
    cells.append((esc('validation_steps'), esc(str(info['validation_steps']))))
  return cells
