# Two commands work on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Three stamps, each adding to the one before: the demo needs only the package and its runtime
# dependencies; lint adds the dev tools; the test suite adds the extras, torch and Ultralytics.
# The demo's install skips compiling bytecode up front (about 75 MB, most of it for modules the
# demo never imports, such as pandas' own tests): Python compiles what it imports on first use.
STAMP := $(VENV)/.installed-demo
DEV_STAMP := $(VENV)/.installed-dev
TEST_STAMP := $(VENV)/.installed-test
# torch with a torchvision built for it (DetectionDataset tv_tensors, Faster R-CNN, DataLoader
# tests, the training notebook): a pair that imports together on x86_64 Python 3.11.
TORCH ?= torch==2.14.1 torchvision==0.29.1
# Ultralytics, for the test that its check_det_dataset resolves a moved YOLO export (it needs
# torch, so it is installed here, beside the pair above, not in the dev extra).
ULTRALYTICS ?= ultralytics==8.4.190

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(DEV_STAMP)

$(TEST_STAMP): $(DEV_STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,dask,notebook]"
	$(BIN)/python -m pip install --quiet $(TORCH) \
		|| echo "note: $(TORCH) could not be installed; torch tests will be skipped"
	$(BIN)/python -m pip install --quiet $(TORCH) $(ULTRALYTICS) \
		|| echo "note: $(ULTRALYTICS) could not be installed; its YOLO test will be skipped"
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null \
		|| echo "note: a few installed files did not compile (torch ships files for newer Pythons); nothing else changes"
	touch $(TEST_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/coreviz-frames demo

# Modules whose docstring examples need a live API (a client, a collection id) are not doctested.
DOCTEST_IGNORE := __main__.py local_api/__main__.py __init__.py api/client.py dask.py \
	api/catalogue.py api/search.py

# The suite starts hundreds of interpreters (xdist workers, README blocks, CLI runs, side
# processes): where PYTHONDONTWRITEBYTECODE is set, each would compile every module it imports
# again (about 2.5 s for pandas, pyarrow and the package). The test stamp compiles the virtual
# environment once (the demo's install skipped it) and the test step compiles the package.
# mypy and lint-imports run beside the doctests (each is one process on one core); the
# step fails if any of the three does.
test: $(TEST_STAMP)
	$(BIN)/python -m compileall -q -j 0 coreviz_frames > /dev/null
	$(BIN)/ruff check coreviz_frames tests benchmarks
	$(BIN)/ruff format --check coreviz_frames tests benchmarks
	$(BIN)/mypy & types=$$!; $(BIN)/lint-imports --no-cache & layers=$$!; \
	$(BIN)/python -m pytest -q -p no:cacheprovider --doctest-modules coreviz_frames \
		$(addprefix --ignore=coreviz_frames/,$(DOCTEST_IGNORE)); doctests=$$?; \
	wait $$types && wait $$layers && test $$doctests -eq 0
	$(BIN)/python -m pytest -q -n auto --maxschedchunk 1

lint: $(DEV_STAMP)
	$(BIN)/ruff check coreviz_frames tests benchmarks
	$(BIN)/ruff format --check coreviz_frames tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(TEST_STAMP)
	@for script in benchmarks/bench_*.py; do \
		echo "== $$script"; \
		$(BIN)/python $$script || exit 1; \
	done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
