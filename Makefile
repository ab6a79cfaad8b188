# The README's two commands: `make app` (set up, fetch u2netp, start the app) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup app test bench
$(VENV)/.installed: requirements.txt requirements-test.txt requirements-ray.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-test.txt -r requirements-ray.txt
	touch $@

setup: $(VENV)/.installed
	$(PY) -m segkit download u2netp
	$(PY) -m segkit warm-up

app: setup
	MALLOC_ARENA_MAX=2 $(PY) app.py $(ARGS)  # two malloc heaps keep the server's memory flat (SECURITY.md)

test: setup
	$(PY) -m pytest $(ARGS)

bench: setup
	$(PY) -m bench.run $(ARGS)
