# The README's two commands: `make app` (set up, fetch u2netp, start the app) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup app test bench
# segkit itself goes in editable (pyproject.toml): `.venv/bin/segkit` and `import segkit` work from any folder.
$(VENV)/.installed: requirements.txt requirements-library.txt requirements-modnet.txt requirements-test.txt requirements-ray.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-test.txt -r requirements-ray.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --editable .
	touch $@

# The default model and the compiled kernels, again only when the packages or segkit's code changed: a
# later `make app` starts the app at once (the app fetches a missing model and recompiles a cleared cache itself).
$(VENV)/.warmed-up: $(VENV)/.installed $(shell find segkit -name '*.py')
	$(PY) -m segkit download u2netp
	$(PY) -m segkit warm-up
	touch $@

setup: $(VENV)/.warmed-up

app: setup
	MALLOC_ARENA_MAX=2 $(PY) app.py $(ARGS)  # two malloc heaps keep the server's memory flat (SECURITY.md)

test: setup
	$(PY) -m pytest $(ARGS)

bench: setup
	$(PY) -m bench.run $(ARGS)
