# Two entry points for a fresh machine: `make main` (the whole job) and `make test` (the suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: install system main results test lint

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

# the main job: writes only under cache/ (the task database) and outputs/ (model, evaluation, main_job.json)
main: install
	bash scripts/main.sh

# the main job, then its results become the committed reference results (benchmarks/results/data_scarcity*) and the
# tables in README.md and BENCHMARKS.md are regenerated from them (scripts/results_prose.py)
MAIN_OUT ?= $(or $(UMEDPT_OUT),outputs/umedpt_mini)
results: main
	mkdir -p benchmarks/results
	cp $(MAIN_OUT)/evaluation/data_scarcity.json $(MAIN_OUT)/evaluation/data_scarcity.png benchmarks/results/
	cp $(MAIN_OUT)/evaluation/target.json benchmarks/results/data_scarcity_target.json
	cp $(MAIN_OUT)/main_job.json benchmarks/results/data_scarcity_run.json
	$(PY) scripts/results_prose.py

test: install
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
