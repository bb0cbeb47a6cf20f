# segkd-bench — `make demo` and `make test` are all a new machine needs; both set up .venv first.
# Variables: DATASET, METHOD, STUDENT, TEACHER select presets; ARGS passes any Hydra override,
# e.g. make train METHOD=kd ARGS="train.iterations=500 seed=1".
# Tuning: TRIALS=N, BUDGET=trials|time:SECONDS, SEEDS=N (finals), STORAGE=<optuna URL>, WORKERS=N;
# BUDGETS=5,10,20 (final/report: finals and one table per budget, from the same studies);
# REPEATS=R (independent studies per method).

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
BUDGETS ?=
REPEATS ?=

presets = dataset=$(DATASET) $(if $(STUDENT),student=$(STUDENT)) $(if $(TEACHER),teacher=$(TEACHER))
budget_kind = $(word 1,$(subst :, ,$(BUDGET)))
budget_secs = $(word 2,$(subst :, ,$(BUDGET)))
tune = $(if $(TRIALS),tune.trials=$(TRIALS)) $(if $(SEEDS),tune.final_seeds=$(SEEDS)) \
	$(if $(BUDGET),tune.budget=$(budget_kind)) $(if $(budget_secs),tune.seconds=$(budget_secs)) \
	$(if $(STORAGE),"tune.storage='$(STORAGE)'") $(if $(WORKERS),tune.workers=$(WORKERS)) \
	$(if $(REPEATS),tune.repeats=$(REPEATS))
# make final/report: every method unless METHOD is given on the command line
chosen_method = $(if $(filter command line environment,$(origin METHOD)),method=$(METHOD))

.PHONY: setup train teacher baseline sweep final report perf-kd perf-data demo test lint clean

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
	$(BIN)/python -m bench.sweep $(presets) method=baseline $(tune) $(ARGS)

sweep: $(STAMP)
	$(BIN)/python -m bench.sweep $(presets) method=$(METHOD) $(tune) $(ARGS)

comma := ,
final: $(STAMP)
	$(if $(BUDGETS),for n in $(subst $(comma), ,$(BUDGETS)); do \
	  $(BIN)/python -m bench.final $(presets) $(chosen_method) $(tune) tune.trials=$$n $(ARGS) || exit 1; done, \
	  $(BIN)/python -m bench.final $(presets) $(chosen_method) $(tune) $(ARGS))

report: $(STAMP)
	$(BIN)/python -m bench.report $(if $(BUDGETS),--budgets $(BUDGETS)) $(ARGS)

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
