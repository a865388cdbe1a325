# Serverless Workbook: set up the course, open it, test it.
# GNU make 3.81+ (the one macOS ships) is enough: no .ONESHELL, no $(file), no !=.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/python3/kernel.json
LAB_ARGS ?=
PYTEST_ARGS ?=
CELL_TIMEOUT ?= 120
# Three test workers on two cores: much of a test's time is waiting (functions throttled to their
# memory's CPU share, event delivery, alarm periods), so two workers left the CPU 28% idle.
# Measured on 2 cores: 894 s with 2 workers, 669 s with 3; the tests' own times added up to 3% more.
# More cores: `make test TEST_WORKERS=N`.
TEST_WORKERS ?= 3

# Jupyter refuses to start as root unless told; CI and many containers run as root.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
# Empty folders are not in git: hand pytest only the ones a clone has.
TEST_PATHS := $(wildcard tests notebooks)
NOTEBOOKS := $(wildcard notebooks/*.ipynb)
WHEELHOUSE := build/wheelhouse
REQUIREMENTS := $(wildcard solutions/*/requirements.txt)

# The venv's kernelspec must win over a user-level `python3` kernel (~/.local/share/jupyter)
# that may point at another Python (Jupyter only prefers the env when it owns the venv).
export JUPYTER_PREFER_ENV_PATH := 1

.DEFAULT_GOAL := help
.PHONY: help setup os-deps lab lint test bench soak course clean distclean

help: ## list the targets
	@echo "Serverless Workbook. Targets:"
	@awk -F':.*## ' '/^[a-z][a-z-]*:.*## /{printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) $(KERNEL) $(WHEELHOUSE)/.filled ## create .venv, install the course, fill the wheelhouse (fast when nothing changed)

$(VPY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
	  { echo "Serverless Workbook needs Python 3.10 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1). Try: make PYTHON=python3.12 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed since the last successful install.
# compat mode puts the project on sys.path with a plain .pth: the default editable finder
# costs every new interpreter (every Lambda worker's cold start) tens of milliseconds.
$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install --disable-pip-version-check -q -e '.[test]' --config-settings editable_mode=compat
	touch $@

# The wheels the course's functions need (their requirements.txt), so `lambdalab build` works offline
# (--no-index --find-links build/wheelhouse) once setup is done.
$(WHEELHOUSE)/.filled: $(REQUIREMENTS) | $(VPY)
	@mkdir -p $(WHEELHOUSE)
	$(VPY) -m pip download --disable-pip-version-check -q --only-binary=:all: -d $(WHEELHOUSE) \
	  $(foreach r,$(REQUIREMENTS),-r $(r))
	touch $@

# Register the venv's Python as the `python3` kernel so notebooks run inside the venv.
$(KERNEL): $(STAMP)
	$(VPY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (Serverless Workbook)"
	touch $@

os-deps: ## install OS packages the tests need (pgbouncer, chromium) if missing
	@bash scripts/os-deps.sh

# The repository in the file browser, lesson 00 first, no news or update checks (see the file).
LAB_FLAGS := --config=jupyter/jupyter_lab_config.py

lab: setup ## open JupyterLab on the course, at lesson 00 (LAB_ARGS=--no-browser for extra flags)
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) $(LAB_FLAGS) $(LAB_ARGS)

lint: setup ## ruff, and the import contracts between lambdalab's layers (pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# LAMBDALAB_QUICK=1: measuring cells take fewer samples (`paths.samples`), as each says.
test: setup os-deps lint ## lint, check labs/ is in sync, then run tests/ and every notebook (solutions track)
	$(VENV)/bin/lambdalab labs check
	LAMBDALAB_TRACK=solutions LAMBDALAB_QUICK=1 $(VENV)/bin/pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile \
	  --nbval-lax --nbval-current-env $(PYTEST_ARGS) $(TEST_PATHS)

bench: setup ## run the benchmarks (python -m bench)
	$(VPY) -m bench

soak: setup ## the fault suite: 2,000 async events with failures and killed workers, 500 uploads, 200 HTTP requests
	$(VPY) -m bench.soak

course: setup ## execute every lesson into build/course/ (static pages + index.html; solutions track)
	@mkdir -p build/course
	@if [ -z "$(NOTEBOOKS)" ]; then echo "No notebooks in notebooks/ yet." >&2; exit 1; fi
	LAMBDALAB_TRACK=solutions $(VENV)/bin/jupyter nbconvert --to html --execute \
	  --ExecutePreprocessor.timeout=$(CELL_TIMEOUT) --output-dir build/course $(NOTEBOOKS)
	$(VPY) -m lambdalab.course.site notebooks build/course

clean: ## remove build/ and caches (keeps .venv)
	rm -rf build .pytest_cache
	find . \( -path ./$(VENV) -o -path ./.git \) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -prune -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
