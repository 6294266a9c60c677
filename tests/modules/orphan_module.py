"""A module that starts a child process and then hangs at import (issue 12, R7): neither may outlive the gate."""

import json
import os
import subprocess

_sleeper = subprocess.Popen(['sleep', '777'])
with open(os.environ['PREFLIGHT_TEST_MARKER'] + '.tmp', 'w') as marker:
  json.dump({'sleep_pid': _sleeper.pid, 'probe_pid': os.getpid(), 'workdir': os.getcwd()}, marker)
os.replace(os.environ['PREFLIGHT_TEST_MARKER'] + '.tmp', os.environ['PREFLIGHT_TEST_MARKER'])
while True:  # Busy, as a module stuck in a loop would be.
  pass
