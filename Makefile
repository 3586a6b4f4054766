# Two commands set up a fresh machine (Python 3.11, no GPU, package registries only):
#   make demo   create .venv, install the pinned stack, run the end-to-end demo
#   make test   same environment plus test extras, then the test suite
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: demo test install venv clean tfod-env test-tfod bench

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"

# Reinstall only when the pins or setup.py change.
$(STAMP): $(PY) setup.py constraints.txt
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tfod-seg demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache

# The TFOD2 engine's own environment (TF 2.15 + TFOD2 snapshot), pinned in
# tools/constraints-tfod.txt; reused as is when its stamp matches. `make test` never needs it.
TFOD_VENV ?= .venv-tfod

tfod-env:
	TFOD_VENV=$(TFOD_VENV) PYTHON=$(PYTHON) bash tools/setup_tfod_env.sh

# tests/engines/tfod/test_direct.py also needs tfod-seg's own environment (a Model Garden export
# for TFOD2's notebook code): $(VENV), reached through TFOD_SEG_MAIN_PYTHON (skipped when absent).
test-tfod: tfod-env
	TFOD_SEG_TFOD_PYTHON=$(abspath $(TFOD_VENV))/bin/python TFOD_SEG_MAIN_PYTHON=$(abspath $(PY)) $(TFOD_VENV)/bin/python -m pytest -m tfod tests/engines/tfod $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc
