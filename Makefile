# Photoflow: `make run` serves on http://127.0.0.1:8080, `make test` checks the code and runs the whole
# suite, `make test-fast` the quick part of it.
# Both set up everything first: the virtualenv, the Python requirements and the Debian packages.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Python's own default: compiled modules are cached in __pycache__ (ignored by git). Where the
# environment turns that off, every test worker and every `photoflow` child process would compile the
# project anew (collecting the tests takes 5 s instead of 2).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-fast check lint typecheck format bench bench-deps setup setup-dev system-deps test-deps migrate clean

run: setup migrate
	$(PY) serve.py run

# The suite in two passes: most tests on TEST_WORKERS pytest-xdist workers (more than the 2 cores: many
# tests wait on exiftool, servers and child processes), then the `serial` ones (timing, load, memory)
# one at a time with the machine to themselves. Both passes always run and print their results and
# their slowest tests; the target fails if either failed. loadgroup hands tests one at a time to the
# next free worker, except that each xdist_group (a module that builds one world for its tests, or
# uses a fixed folder) goes whole to one worker.
TEST_WORKERS ?= 4
PYTEST := $(PY) -m pytest --durations=20
XDIST := -n $(TEST_WORKERS) --dist loadgroup

test: setup-dev test-deps check
	@status=0; \
	echo '$(PYTEST) $(XDIST) -m "not serial"'; \
	$(PYTEST) $(XDIST) -m "not serial" || status=$$?; \
	echo '$(PYTEST) -m serial'; \
	$(PYTEST) -m serial || status=$$?; \
	if [ $$status -ne 0 ]; then echo "make test: a pass failed (pytest exit status $$status)"; fi; \
	exit $$status

# The inner loop: neither slow nor serial tests, in parallel (a minute or two).
test-fast: setup-dev
	$(PYTEST) $(XDIST) -m "not slow and not serial"

# What the habits promise, checked before any test runs: ruff's rules and format, and the type hints of
# photoflow/ and admin_tui/ (mypy, configured in pyproject.toml).
check: lint typecheck

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup-dev
	$(VENV)/bin/mypy

format: setup-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup migrate bench-deps
	$(PY) bench/import_bench.py
	$(PY) bench/gallery_bench.py
	$(PY) bench/derivative_bench.py
	$(PY) bench/piwigo_bench.py
	$(PY) bench/piwigo_paging_bench.py
	$(PY) bench/console_bench.py
	$(PY) bench/multihost_bench.py
	$(PY) bench/soak.py

# The load generator and the static-file floor of the derivative benchmark.
bench-deps:
	$(call apt_need,wrk,wrk)
	$(call apt_need,/usr/sbin/nginx,nginx-light)

migrate: setup
	$(PY) -m photoflow db upgrade

setup: system-deps $(VENV)/.requirements node_modules/.installed

setup-dev: setup $(VENV)/.requirements-dev

# apt_need COMMAND-OR-PATH PACKAGES: install Debian packages when missing and we are root, or stop
# with the exact command to run.
define apt_need
	@if ! command -v $(1) >/dev/null 2>&1 && ! ls $(1) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(2)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else \
	    echo "Photoflow needs $(2): run  sudo apt-get install $(2)"; exit 1; \
	  fi; \
	fi
endef

system-deps:
	$(call apt_need,exiftool,libimage-exiftool-perl)
	$(call apt_need,npm,npm)
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  else echo "Photoflow needs python3-venv: run  sudo apt-get install python3-venv"; exit 1; fi; }

# The browser tests drive Debian's Chromium with Playwright (never a browser Playwright downloads);
# the console's end-to-end test types into it through tmux, as a person over SSH would; the proxy test
# runs contrib/nginx.conf in a real nginx (with a throwaway certificate from openssl), and
# systemd-analyze checks contrib/photoflow.service;
# the tests start their own PostgreSQL server; without root they are skipped with the reason.
test-deps:
	$(call apt_need,/usr/bin/chromium,chromium)
	$(call apt_need,tmux,tmux)
	$(call apt_need,/usr/sbin/nginx,nginx-light)
	$(call apt_need,openssl,openssl)
	$(call apt_need,systemd-analyze,systemd)
	@if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing postgresql"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "note: PostgreSQL tests will be skipped; to run them: sudo apt-get install postgresql"; fi; \
	fi

# The project itself is installed editable (no dependencies of its own beyond requirements.txt), which
# puts the `photoflow` command in .venv/bin.
$(VENV)/.requirements: requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements.txt
	$(PIP) install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# pig.js and any other front-end package, pinned in package-lock.json, never copied into the repo.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(VENV)/.requirements-dev: requirements-dev.txt requirements.txt
	$(PIP) install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache node_modules
