"""A Trainer module whose import never returns (e.g. a module-level call to a service that does not answer)."""

import time

while True:
  time.sleep(1)
