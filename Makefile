# Two entry points for a fresh machine: `make main` (the whole job) and `make test` (the suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: install system main test lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) torch==2.13.0          # first: the CPU wheel, so nothing pulls a CUDA build
	$(PIP) -e ".[all]"
	$(PIP) --no-deps stardist      # data files only (its own deps need TensorFlow)
	$(PY) tests/transformers_compat/fetch.py   # transformers' own common test mixins, for the installed version
	touch $@

install: $(VENV)/.installed system

system:
	bash scripts/install_system.sh

main: install
	bash scripts/main.sh

test: install
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
