"""A Trainer module with run_fn only: no model builder under a conventional name."""


def run_fn(fn_args):
  del fn_args
