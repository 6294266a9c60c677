"""Trainer module files (TFX `run_fn` modules), loaded by path by Trainer and by the Preflight loss check."""
