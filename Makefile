# modelward — one-command set-up, demo, tests and benchmarks.
#   make run    set up from nothing, then scan the bundled examples/ and print the report
#   make test   set up, then run the whole test suite
#   make bench  set up, then run the benchmarks and print their figures
#   make lint   ruff + mypy --strict (also part of make test)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp-setup
JOBS   ?= 2

.PHONY: setup system-deps run test bench lint docs examples clean

# Debian packages the registry tests use: a real PostgreSQL server and a headless browser.
# Installed when missing and when we can (root with apt-get); otherwise those tests skip
# with a reason.
SYSTEM_PACKAGES := postgresql chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is pinned to exactly 2.13.0 (a CPU build lies on this machine's disk) and is
# installed first so nothing else pulls in another build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,torch]'
	touch $(STAMP)

setup: $(STAMP)

system-deps:
	@if command -v chromium >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian packages: $(SYSTEM_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	else \
	  echo "note: $(SYSTEM_PACKAGES) not installed (needs root + apt-get); registry DB/browser tests will skip"; \
	fi

run: setup
	@test -f examples/README.md || $(BIN)/python examples/generate.py
	@echo "== modelward scan examples/ =="
	@$(BIN)/modelward scan examples/; code=$$?; \
	  echo "(exit code $$code: 1 means findings at or above the fail-on level — expected here, examples/malicious holds inert malicious samples)"; \
	  test $$code -le 1

test: setup system-deps lint
	$(BIN)/python -m pytest -q -n $(JOBS) -p no:cacheprovider

bench: setup
	$(BIN)/python bench/run.py

lint: setup
	$(BIN)/ruff check --quiet src tests bench examples
	$(BIN)/mypy src

docs: setup
	$(BIN)/python -m modelward rules --format markdown > docs/rules.md

examples: setup
	$(BIN)/python examples/generate.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/.data
