"""A Trainer module whose model builder allocates far more memory than the machine has."""

import numpy as np


def _build_keras_model():
  blocks = []
  while True:
    blocks.append(np.ones(256 * 1024 * 1024 // 8))  # 256 MiB at a time, written so it is really resident.
