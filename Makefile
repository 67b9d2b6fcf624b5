# scratchnet: every command a newcomer needs. `make demo` and `make test` create the
# virtual environment on first use, so a fresh clone needs nothing but Python 3.10+.
# `make demo` installs what training needs; `make test` adds the test tools and every
# optional extra the tests exercise. Tests and benchmarks that need MNIST read it from
# $SCRATCHNET_DATA_DIR (they skip without it).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.core-stamp
DEV := $(VENV)/.dev-stamp

.PHONY: install install-dev demo test bench bench-scaling reproduce docs clean

install: $(CORE)

install-dev: $(DEV)

$(CORE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(CORE)

$(DEV): $(CORE)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(DEV)

demo: install
	$(BIN)/scratchnet train configs/digits_quickstart.yaml

# the linter first: it reads every file in well under a second, so a style slip fails at once
test: install-dev
	$(BIN)/ruff check scratchnet tests benchmarks tools
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: install-dev
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/cnn_speed.py
	$(BIN)/python benchmarks/recurrent_speed.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/memory.py

# The cost table over hidden widths, depths and batch sizes, with per-phase timers.
bench-scaling: install-dev
	$(BIN)/python benchmarks/bench.py --scaling

# The report goes to runs/reproduce/reproduction.md (untracked); REPORT=docs/reproduction.md
# rewrites the committed one, BOSTON=BostonHousing.csv adds the Boston regressions.
reproduce: install
	nice -n 10 $(BIN)/python benchmarks/reproduce.py \
		$(if $(REPORT),--report $(REPORT)) $(if $(BOSTON),--boston $(BOSTON))

# Every output block of README.md and docs/*.md, made again by running what it shows
# (tools/docs.py; MNIST blocks need SCRATCHNET_DATA_DIR). FILES=docs/tune.md for some only.
docs: install-dev
	$(BIN)/python tools/docs.py $(FILES)

clean:
	rm -rf $(VENV) runs sweeps tunes .pytest_cache
