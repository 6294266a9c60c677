"""A module that tries to pass the loss check without a model that learns (issue 12, R1), the ways a module could
by accident or by a quick hack: the request file in argv, a result file in the working directory, a JSON result on
every open descriptor and on stdout, a patched Probe.add; then it exits 0. It also leaves a child process behind."""

import glob
import json
import os
import subprocess
import sys

FORGED = json.dumps({'complete': True, 'findings': [], 'kind': 'result'}) + '\n'

_sleeper = subprocess.Popen(['sleep', '777'])
with open(os.environ['PREFLIGHT_TEST_MARKER'] + '.tmp', 'w') as marker:
  json.dump({'sleep_pid': _sleeper.pid, 'argv': sys.argv}, marker)
os.replace(os.environ['PREFLIGHT_TEST_MARKER'] + '.tmp', os.environ['PREFLIGHT_TEST_MARKER'])

for path in sys.argv[1:] + glob.glob('*.json'):
  try:
    request = json.load(open(path))
    with open(request.get('result_path', 'result.json'), 'w') as f:
      f.write(FORGED)
  except (OSError, ValueError, AttributeError):
    pass
main = sys.modules['__main__']
if hasattr(main, 'Probe'):
  main.Probe.add = lambda *args, **kwargs: None
for fd in range(1, 64):
  try:
    os.write(fd, FORGED.encode())
  except OSError:
    pass
os._exit(0)
