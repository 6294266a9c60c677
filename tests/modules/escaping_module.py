"""A module whose helpers escape a process group (issue 30): a server in a new session, a daemon that double-forked
into its own session, and a temporary file as autograph writes one. It then fails to define anything to train, so
the probe ends by itself; none of it may outlive the gate."""

import json
import os
import subprocess
import sys
import tempfile
import time

_MARKER = os.environ['PREFLIGHT_TEST_MARKER']
# A TensorBoard-style server: its own session, so a kill of the probe's process group misses it.
_server = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True)
# A daemon: the child forks, the grandchild starts a session and stays, the child exits (the grandchild is orphaned).
_DAEMON = ('import os, sys, time\n'
           'if os.fork() == 0:\n'
           '  os.setsid()\n'
           '  open(sys.argv[1] + ".tmp", "w").write(str(os.getpid())); os.replace(sys.argv[1] + ".tmp", sys.argv[1])\n'
           '  time.sleep(600)\n')
subprocess.Popen([sys.executable, '-c', _DAEMON, _MARKER + '.daemon']).wait()
while not os.path.exists(_MARKER + '.daemon'):
  time.sleep(0.05)
_handle, _temp = tempfile.mkstemp(prefix='__autograph_generated_file', suffix='.py')
os.close(_handle)
with open(_MARKER + '.tmp', 'w') as marker:
  json.dump({'server_pid': _server.pid, 'daemon_pid': int(open(_MARKER + '.daemon').read()),
             'probe_pid': os.getpid(), 'temp_file': _temp, 'workdir': os.getcwd()}, marker)
os.replace(_MARKER + '.tmp', _MARKER)
