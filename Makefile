# segkd-bench — `make demo` and `make test` are all a new machine needs; both set up .venv first.
# Variables: DATASET, METHOD, STUDENT, TEACHER select presets; ARGS passes any Hydra override,
# e.g. make train METHOD=kd ARGS="train.iterations=500 seed=1".

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

DATASET ?= synthetic
METHOD  ?= baseline
STUDENT ?=
TEACHER ?=
ARGS    ?=

presets = dataset=$(DATASET) $(if $(STUDENT),student=$(STUDENT)) $(if $(TEACHER),teacher=$(TEACHER))

.PHONY: setup train teacher demo test lint clean

setup: $(STAMP)

# torch and torchvision come pinned as a matching pair from constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/python -m bench.train $(presets) method=$(METHOD) $(ARGS)

teacher: $(STAMP)
	$(BIN)/python -m bench.teacher $(presets) $(ARGS)

demo: $(STAMP)
	$(BIN)/python -m bench.demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# Generated results (runs, teachers, demo); the virtual environment stays.
clean:
	find results -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -exec rm -rf {} +
