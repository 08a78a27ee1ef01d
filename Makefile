# Two entry points: `make demo` and `make test`. Both build what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install build clean jackd

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

build: $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace

demo: build
	$(BIN)/riffd demo

jackd:
	@command -v jackd >/dev/null 2>&1 || { \
	  echo "installing jackd2 (JACK MIDI for the end-to-end tests)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jackd2 >/dev/null; }

test: build jackd
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info cython_ext/*.so cython_ext/*.c demo-out
