# Quick start: `make serve` runs the server, `make test` runs the tests (each sets up .venv first).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: serve test install lint typecheck bench clean

$(VENV)/.installed: pyproject.toml setup.py $(wildcard arinova/_fast/*.pyx arinova/_fast/*.pxd)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e ".[test,embedded]"
	touch $@

install: $(VENV)/.installed

serve: install
	$(VENV)/bin/arinova serve

# The whole suite on the compiled _fast modules and uvloop, then only what differs under
# their pure-Python twins on the stock asyncio loop: the codec, the socket layer and the
# dispatch in front of it, one realtime module end to end, and the suite's own checks.
PURE_TESTS := tests/ws tests/server/test_dispatch.py tests/realtime/test_client.py tests/test_suite.py

# Each pass runs on TEST_WORKERS pytest-xdist workers, a test file to a worker, each worker
# with a redis-server of its own (tests/support/worker_redis.py); TEST_WORKERS=0 runs it in
# this process on the machine's Redis.
TEST_WORKERS ?= 3
XDIST := -n $(TEST_WORKERS) --dist loadfile

test: install
	ARINOVA_REQUIRE_COMPILED=1 ARINOVA_TEST_LOOP=uvloop $(PY) -m pytest -q $(XDIST)
	ARINOVA_PURE=1 ARINOVA_TEST_LOOP=asyncio $(PY) -m pytest -q $(XDIST) $(PURE_TESTS)

lint: install
	$(VENV)/bin/ruff check arinova tests benchmarks
	$(VENV)/bin/ruff format --check arinova tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

bench: install
	$(PY) -m pytest -p no:cacheprovider --benchmark-enable benchmarks/

clean:
	rm -rf build $(VENV) arinova/_fast/*.c arinova/_fast/*.so
