# Two commands: `make demo` and `make test`. Everything installs into .venv (Python 3.10) on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# python3.10 on PATH (a pyenv shim may exist but refuse to run), else a pyenv 3.10 install.
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 \
               /usr/bin/python3.10; do $$p -c 'import sys; assert sys.version_info[:2]==(3,10)' >/dev/null 2>&1 \
               && { command -v $$p 2>/dev/null || echo $$p; } && break; done)
SCENARIO ?= all
BENCH_SIZES ?=
PYTEST_ARGS ?=

.PHONY: install demo test test-fast test-tfx115 lint bench kubeflow clean

$(STAMP): setup.py constraints.txt
	@if [ ! -x $(PY) ]; then \
	  if [ -z "$(PYTHON310)" ]; then echo "Python 3.10 not found: TFX 1.16 needs Python 3.9-3.10 (set PYTHON310=...)"; exit 2; fi; \
	  echo "Creating $(VENV) with $(PYTHON310)"; $(PYTHON310) -m venv $(VENV); fi
	$(PY) -m pip install -q --upgrade 'pip<25' wheel 'setuptools<70'
	$(PY) -m pip install -q -c constraints.txt -e '.[kfp,dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m pipelines.demo --scenario $(SCENARIO)

# The whole suite, slow end-to-end tests included (CI runs exactly this).
test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

# Skips tests marked slow (LocalDagRunner pipelines, training).
test-fast: $(STAMP)
	$(PY) -m pytest tests -m 'not slow' $(PYTEST_ARGS)

# The TFX 1.15 lane: its own venv (.venv-tfx115) from constraints/tfx-1.15.txt, the wheel installed next to it,
# the compatibility tests (CI runs it after `make test`).
test-tfx115:
	bash .ci/lane-tfx115 $(PYTHON310)

lint: $(STAMP)
	$(VENV)/bin/ruff check components pipelines kubeflow tests bench setup.py

bench: $(STAMP)
	$(PY) -m bench.run $(if $(BENCH_SIZES),--sizes $(BENCH_SIZES),)

kubeflow: $(STAMP)
	$(PY) -m kubeflow.runner --output-dir kubeflow/build $(KUBEFLOW_ARGS)

clean:
	rm -rf tfx_preflight_runs preflight_report kubeflow/build bench/out .pytest_cache .venv-tfx115
