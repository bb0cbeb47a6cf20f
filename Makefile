# segkd-bench — `make demo` and `make test` are all a new machine needs; both set up .venv first.
# Variables: DATASET, METHOD, STUDENT, TEACHER select presets; ARGS passes any Hydra override,
# e.g. make train METHOD=kd ARGS="train.iterations=500 seed=1".
# Tuning: TRIALS=N, BUDGET=trials|time:SECONDS, SEEDS=N (finals), STORAGE=<optuna URL>, WORKERS=N,
# LAUNCHER=local|slurm (launcher.* keys in ARGS). Recipes that may carry STORAGE (a URL with a
# password) start with @ so make does not echo them; the commands print the URL masked.

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

DATASET ?= synthetic
METHOD  ?= baseline
STUDENT ?=
TEACHER ?=
ARGS    ?=
TRIALS  ?=
BUDGET  ?=
SEEDS   ?=
STORAGE ?=
WORKERS ?=
LAUNCHER ?=

presets = dataset=$(DATASET) $(if $(STUDENT),student=$(STUDENT)) $(if $(TEACHER),teacher=$(TEACHER))
budget_kind = $(word 1,$(subst :, ,$(BUDGET)))
budget_secs = $(word 2,$(subst :, ,$(BUDGET)))
tune = $(if $(TRIALS),tune.trials=$(TRIALS)) $(if $(SEEDS),tune.final_seeds=$(SEEDS)) \
	$(if $(BUDGET),tune.budget=$(budget_kind)) $(if $(budget_secs),tune.seconds=$(budget_secs)) \
	$(if $(STORAGE),"tune.storage='$(STORAGE)'") $(if $(WORKERS),tune.workers=$(WORKERS)) \
	$(if $(LAUNCHER),launcher.name=$(LAUNCHER))
# make final/plan: every method unless METHOD is given on the command line
given = $(filter command line environment,$(origin $(1)))
chosen_method = $(if $(call given,METHOD),method=$(METHOD))
# make final: every stored study unless DATASET/STUDENT/TEACHER narrow the selection
chosen_presets = $(if $(call given,DATASET),dataset=$(DATASET)) $(if $(STUDENT),student=$(STUDENT)) \
	$(if $(TEACHER),teacher=$(TEACHER))

.PHONY: setup train teacher baseline sweep final status report plan check-data perf-kd perf-data demo test lint clean

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

baseline: $(STAMP)
	@$(BIN)/python -m bench.sweep $(presets) method=baseline $(tune) $(ARGS)

sweep: $(STAMP)
	@$(BIN)/python -m bench.sweep $(presets) method=$(METHOD) $(tune) $(ARGS)

final: $(STAMP)
	@$(BIN)/python -m bench.final $(chosen_presets) $(chosen_method) $(tune) $(ARGS)

# Every study in the storage: counted / running / stale / failed trials, best so far, ETA.
status: $(STAMP)
	@$(BIN)/python -m bench.status $(if $(STORAGE),"tune.storage='$(STORAGE)'") $(ARGS)

report: $(STAMP)
	$(BIN)/python -m bench.report $(ARGS)

# Cost of the comparison before anything trains: every method unless METHOD= is given.
plan: $(STAMP)
	@$(BIN)/python -m bench.plan $(presets) $(chosen_method) $(tune) $(ARGS)

# Decode every file of a dataset copy once; non-zero exit on any fault.
check-data: $(STAMP)
	$(BIN)/python -m bench.check_data $(presets) $(ARGS)

# Benchmarks: they print their settings with their figures and write results/perf/.
perf-kd: $(STAMP)
	$(BIN)/python -m bench.perf.kd $(ARGS)

perf-data: $(STAMP)
	$(BIN)/python -m bench.perf.data $(ARGS)

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
