# segkd-bench — `make demo` and `make test` are all a new machine needs; both set up .venv first.
# Variables: DATASET, METHOD, STUDENT, TEACHER select presets; ARGS passes any Hydra override,
# e.g. make train METHOD=kd ARGS="train.iterations=500 seed=1".
# Tuning: TRIALS=N, BUDGET=trials|time:SECONDS, SEEDS=N (finals), STORAGE=<optuna URL>, WORKERS=N,
# REPEATS=R (independent studies per method), LAUNCHER=local|slurm (launcher.* keys in ARGS);
# BUDGETS=5,10,20 (final/report: finals and one table per budget, from the same studies).
# Recipes that may carry STORAGE (a URL with a password) start with @ so make does not echo them;
# the commands print the URL masked.

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
BUDGETS ?=
REPEATS ?=
STUDY   ?=
YES     ?=
PAPER   ?=
FILES   ?=
RUN     ?=
PART    ?=

# A misspelt variable (METHD=ifvd, TRIAL=2) would otherwise be ignored and the defaults would run.
KNOWN_VARIABLES := DATASET METHOD STUDENT TEACHER ARGS TRIALS BUDGET SEEDS STORAGE WORKERS LAUNCHER \
	BUDGETS REPEATS STUDY YES PAPER FILES RUN PART PYTHON STAMP
unknown_variables := $(filter-out $(KNOWN_VARIABLES),$(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v))))
ifneq ($(strip $(unknown_variables)),)
$(error unknown variable $(unknown_variables) (misspelt?); known: $(KNOWN_VARIABLES); pass config keys as ARGS="key=value")
endif

presets = dataset=$(DATASET) $(if $(STUDENT),student=$(STUDENT)) $(if $(TEACHER),teacher=$(TEACHER))
budget_kind = $(word 1,$(subst :, ,$(BUDGET)))
budget_secs = $(word 2,$(subst :, ,$(BUDGET)))
tune = $(if $(TRIALS),tune.trials=$(TRIALS)) $(if $(SEEDS),tune.final_seeds=$(SEEDS)) \
	$(if $(BUDGET),tune.budget=$(budget_kind)) $(if $(budget_secs),tune.seconds=$(budget_secs)) \
	$(if $(STORAGE),"tune.storage='$(STORAGE)'") $(if $(WORKERS),tune.workers=$(WORKERS)) \
	$(if $(REPEATS),tune.repeats=$(REPEATS)) $(if $(LAUNCHER),launcher.name=$(LAUNCHER))
# make final/plan/report: every method unless METHOD is given on the command line
given = $(filter command line environment,$(origin $(1)))
chosen_method = $(if $(call given,METHOD),method=$(METHOD))
# make final: every stored study unless DATASET/STUDENT/TEACHER narrow the selection
chosen_presets = $(if $(call given,DATASET),dataset=$(DATASET)) $(if $(STUDENT),student=$(STUDENT)) \
	$(if $(TEACHER),teacher=$(TEACHER))

.PHONY: help setup train teacher maskd-tokens baseline sweep final final-compute fidelity rescore status report plan reproduce check-data \
	perf perf-kd perf-data demo test lint docs docs-build clean clean-all forget-failures forget-study
.DEFAULT_GOAL := help

# `make` and `make help`: every target with its `## ` comment, then the variables.
help:
	@echo "segkd-bench: make <target> [VARIABLE=value ...]"
	@echo
	@echo "Targets:"
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Variables:"
	@awk '/^## [A-Z]+ / {sub(/^## /, "  "); print}' $(MAKEFILE_LIST)

## DATASET  synthetic (default), cityscapes, ade20k, voc, camvid, coco_stuff164k, folder
## METHOD   baseline (default) or a KD method, e.g. kd, ifvd, skd_pair (see conf/method/)
## STUDENT  student preset (default: the dataset's), e.g. deeplabv3_r18
## TEACHER  teacher preset (default: the dataset's), e.g. deeplabv3_r101
## TRIALS   counted trials per study (default 20)
## BUDGET   trials (default) or time:SECONDS (the same device-seconds per method: seconds × GPUs, or × CPU threads)
## SEEDS    final runs per method (default 3)
## STORAGE  Optuna storage URL (default: the journal file results/studies/optuna.journal)
## WORKERS  worker processes per study, and for make final (default 1)
## REPEATS  independent studies per method (default 1; own sampler and hold-out seeds)
## BUDGETS  final/report: several budgets from the same studies, e.g. 5,10,20 or 600s,1200s
## LAUNCHER slurm: sweep workers as a Slurm job array (launcher.* keys)
## PAPER    reproduce/plan: a published table, with DATASET (e.g. PAPER=cirkd DATASET=cityscapes)
## FILES    reproduce: the folder of the official checkpoint and backbone files (default downloads/)
## RUN      reproduce: 1 runs the commands (default: print them)
## STUDY    forget-failures/forget-study: a study name as make status lists it
## YES      1: forget-study and clean-all delete without asking
## PART     teacher/maskd-tokens: both (default), full (finals' teacher) or tune (tuning teacher, no hold-out)
## ARGS     any config override key=value ... (pytest arguments for test, flags for report)

setup: $(STAMP) ## create .venv and install the project (pinned by constraints.txt)

# torch and torchvision come pinned as a matching pair from constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

train: $(STAMP) ## one student run
	$(BIN)/python -m bench.train $(presets) method=$(METHOD) $(ARGS)

teacher: $(STAMP) ## train the full-data and the tuning teacher (PART=full|tune: one), stored under results/teachers/
	$(BIN)/python -m bench.teacher $(if $(PART),--part=$(PART)) $(presets) $(if $(REPEATS),tune.repeats=$(REPEATS)) $(ARGS)

maskd-tokens: $(STAMP) ## MasKD stage 1: tokens on each teacher (PART as for teacher), stored by its SHA-256
	$(BIN)/python -m bench.maskd_tokens $(if $(PART),--part=$(PART)) $(presets) $(if $(REPEATS),tune.repeats=$(REPEATS)) $(ARGS)

baseline: $(STAMP) ## tune the student baseline (a sweep with METHOD=baseline)
	@$(BIN)/python -m bench.sweep $(presets) method=baseline $(tune) $(ARGS)

sweep: $(STAMP) ## tune METHOD with the same budget (LAUNCHER=slurm: workers as a Slurm job array)
	@$(BIN)/python -m bench.sweep $(presets) method=$(METHOD) $(tune) $(ARGS)

final: $(STAMP) ## retrain each stored study's best configuration over SEEDS (BUDGETS=5,10,20: per budget)
	@$(BIN)/python -m bench.final $(if $(BUDGETS),--budgets $(BUDGETS)) $(chosen_presets) $(chosen_method) $(tune) $(ARGS)

final-compute: $(STAMP) ## after make final: KD finals retrained at the baseline's measured compute (results/finals_compute)
	@$(BIN)/python -m bench.final --compute-matched $(if $(BUDGETS),--budgets $(BUDGETS)) $(chosen_presets) $(chosen_method) $(tune) $(ARGS)

fidelity: $(STAMP) ## does the tuning schedule rank like the final one? top-k + k random trials retrained (tune.fidelity_k)
	@$(BIN)/python -m bench.fidelity $(chosen_presets) $(chosen_method) $(tune) $(ARGS)

rescore: $(STAMP) ## re-run the studies' pruned trials to completion: do the best configuration and verdict change? (ARGS=--price: cost only)
	@$(BIN)/python -m bench.rescore $(chosen_presets) $(chosen_method) $(tune) $(ARGS)

status: $(STAMP) ## every study in the storage: counted / running / stale / failed trials, best, ETA
	@$(BIN)/python -m bench.status $(if $(STORAGE),"tune.storage='$(STORAGE)'") $(ARGS)

report: $(STAMP) ## comparison tables and figures from the final runs (BUDGETS=5,10,20: one table each)
	@$(BIN)/python -m bench.report $(if $(BUDGETS),--budgets $(BUDGETS)) $(if $(STORAGE),--storage '$(STORAGE)') $(ARGS)

plan: $(STAMP) ## cost of the comparison (GPU-hours, disk) before anything trains (PAPER=: a published table's)
	@$(BIN)/python -m bench.plan $(if $(PAPER),experiment=$(PAPER)_$(DATASET),$(presets)) $(chosen_method) $(tune) $(ARGS)

reproduce: $(STAMP) ## a published table: convert its teacher, tune, finals, report (PAPER=cirkd DATASET=cityscapes; RUN=1 runs)
	@$(BIN)/python -m bench.reproduce "$(PAPER)" "$(DATASET)" $(if $(FILES),--files $(FILES)) $(if $(RUN),--run) \
		$(if $(STUDENT),student=$(STUDENT)) $(chosen_method) $(tune) $(ARGS)

forget-failures: $(STAMP) ## a study's failed trials stop counting against tune.max_failed_trials (after a fix)
	@$(BIN)/python -m bench.forget failures "$(STUDY)" $(if $(STORAGE),"tune.storage='$(STORAGE)'") $(ARGS)

forget-study: $(STAMP) ## delete one study (STUDY=...) and its trial folders, after a question; finals stay
	@$(BIN)/python -m bench.forget study "$(STUDY)" $(if $(YES),--yes) $(if $(STORAGE),"tune.storage='$(STORAGE)'") $(ARGS)

check-data: $(STAMP) ## decode every file of a dataset copy once; non-zero exit on any fault
	$(BIN)/python -m bench.check_data $(presets) $(ARGS)

# Benchmarks: they print their settings with their figures and write results/perf/.
perf: $(STAMP) ## benchmark: step vs plain loop, trial overhead, worker scaling, KD terms, loader
	$(BIN)/python -m bench.perf $(ARGS)

perf-kd: $(STAMP) ## benchmark: cost of every KD term per step
	$(BIN)/python -m bench.perf.kd $(ARGS)

perf-data: $(STAMP) ## benchmark: input-pipeline throughput
	$(BIN)/python -m bench.perf.data $(ARGS)

demo: $(STAMP) ## the whole pipeline on synthetic data (CPU, minutes)
	$(BIN)/python -m bench.demo $(ARGS)

test: $(STAMP) ## the test suite (what CI runs); ARGS="-m 'not slow'" for a quick loop
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP) ## ruff
	$(BIN)/ruff check .

# The documentation site (mkdocs-material + mkdocstrings); README.md is its home page.
docs: $(STAMP) ## serve the documentation site at http://127.0.0.1:8000 (live reload)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

docs-build: $(STAMP) ## build the documentation site into site/ (--strict: a broken link fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# What took GPU-hours (teachers, studies, their trials and finals) stays unless clean-all is asked for.
KEPT := teachers studies trials finals
clean: ## delete generated results except teachers, studies, trials and finals (keeps .venv)
	find results -mindepth 1 -maxdepth 1 ! -name README.md $(foreach k,$(KEPT),! -name $(k)) -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -exec rm -rf {} +
	@kept="$$(cd results && ls -d $(KEPT) 2>/dev/null | tr '\n' ' ')"; \
	if [ -n "$$kept" ]; then echo "kept results/{$$kept} (teachers, studies, finals: make clean-all deletes them)"; fi

clean-all: ## delete every generated result, teachers and studies too, after a question (YES=1: no question)
	@if [ "$(YES)" != 1 ]; then \
		printf 'delete everything under results/ (teachers, studies, finals included)? [y/N] '; read a || a=; \
		case "$$a" in y|Y|yes) ;; *) echo "nothing deleted"; exit 0;; esac; fi; \
	find results -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} + ; \
	rm -rf .pytest_cache .ruff_cache; \
	find . -name __pycache__ -not -path './$(VENV)/*' -exec rm -rf {} + ; \
	echo "deleted everything under results/ (but README.md)"
