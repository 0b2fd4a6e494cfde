# The project's two commands: `make demo` and `make test`.  Each sets up what it needs.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= demo-out
PORT   ?= 8080

.PHONY: demo test lint bench system-packages clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Debian: apt-get install python3.11 python3.11-venv)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# face_recognition's own metadata pins dlib, which pip would build from source;
	# dlib-bin (a prebuilt dlib) is in our dependencies instead.
	$(PY) -m pip install -q --no-deps 'face-recognition>=1.3,<1.4'
	touch $(STAMP)

# Debian packages the tests and the demo talk to (real services, not stand-ins).
system-packages:
	@bash deploy/install-system-packages.sh

test: $(STAMP) system-packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 2 -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

demo: $(STAMP) system-packages
	$(VENV)/bin/shailoo demo --out $(DEMO) --serve $(PORT)

bench: $(STAMP) system-packages
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache .hypothesis
