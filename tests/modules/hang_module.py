"""A Trainer module whose model builder never returns (e.g. waits on a lock or a remote service)."""

import time


def _build_keras_model():
  while True:
    time.sleep(1)
