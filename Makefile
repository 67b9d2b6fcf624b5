# scratchnet: every command a newcomer needs. `make demo` and `make test` create the
# virtual environment on first use, so a fresh clone needs nothing but Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# MNIST for tests and benchmarks: $SCRATCHNET_DATA_DIR when set, else the shared folder
# beside the checkout when present (tests that need MNIST skip when neither exists).
SCRATCHNET_DATA_DIR ?= $(abspath $(wildcard ../shared/datasets))
export SCRATCHNET_DATA_DIR

.PHONY: install demo test bench reproduce clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: install
	$(BIN)/scratchnet train configs/digits_quickstart.yaml

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/bench.py

# The report goes to runs/reproduce/reproduction.md (untracked); REPORT=docs/reproduction.md
# rewrites the committed one, BOSTON=BostonHousing.csv adds the Boston regressions.
reproduce: install
	nice -n 10 $(BIN)/python benchmarks/reproduce.py \
		$(if $(REPORT),--report $(REPORT)) $(if $(BOSTON),--boston $(BOSTON))

clean:
	rm -rf $(VENV) runs sweeps .pytest_cache
