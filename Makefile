# Two entry points: `make demo` and `make test`. Both build what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all demo test install build clean jackd rttests blas lock bench fluidsynth

all: build

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# requirements.lock pins every package at the version the tests passed with (pip
# constraints); `make lock` refreshes it from a fresh, unpinned install.
# setuptools first: `setup.py build_ext` runs on the venv's own (3.11's venv brings 65),
# and pyproject's SPDX license string needs 77 or later.
$(STAMP): $(BIN)/python pyproject.toml setup.py requirements.lock
	$(BIN)/pip install -q -c requirements.lock 'setuptools>=77'
	$(BIN)/pip install -q -c requirements.lock -e '.[test]'
	touch $(STAMP)

lock:
	rm -rf .lock-venv && $(PY) -m venv .lock-venv && .lock-venv/bin/pip install -q --upgrade pip
	.lock-venv/bin/pip install -q 'setuptools>=77' -e '.[test]'
	{ echo "# pip constraints: the versions 'make test' passed with. Refresh: make lock"; \
	  .lock-venv/bin/pip freeze --all --exclude-editable | grep -v -E '^(riffd|pip)=='; } > requirements.lock
	rm -rf .lock-venv

install: $(STAMP)

build: $(STAMP) blas
	$(BIN)/python setup.py -q build_ext --inplace

# MLX's Linux CPU wheel links a reference BLAS (~15x slower); riffd.models.blas loads
# OpenBLAS in its place when this library is installed.
blas:
	@if [ "$$(uname -s)" = Linux ] && ! ls /usr/lib/*/openblas-pthread/libopenblas.so.0 >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing libopenblas0-pthread (fast BLAS for MLX training and inference)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libopenblas0-pthread >/dev/null; \
	  else echo "no apt-get: install OpenBLAS and set RIFFD_BLAS=/path/to/libopenblas.so.0"; fi; \
	fi

demo: build
	$(BIN)/riffd demo

jackd:
	@command -v jackd >/dev/null 2>&1 || { \
	  echo "installing jackd2 (JACK MIDI for the end-to-end tests)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jackd2 >/dev/null; }

# cyclictest (rt-tests): the machine's own stalls beside the live benchmarks' figures
rttests:
	@command -v cyclictest >/dev/null 2>&1 || { \
	  echo "installing rt-tests (cyclictest: the machine's stalls beside the live benchmarks)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rt-tests >/dev/null; }

# A pytest-xdist worker a core: the JACK minutes wait on the clock while the other core
# trains and evaluates (each worker starts its own jackd). worksteal: the long tests do
# not leave one worker idle at the end.
test: build jackd rttests
	$(BIN)/python -m pytest -q -n auto --dist worksteal

# FluidSynth and a General MIDI SoundFont: the reference `riffd bench synth` compares with.
fluidsynth:
	@command -v fluidsynth >/dev/null 2>&1 && ls /usr/share/sounds/sf2/*.sf2 >/dev/null 2>&1 || { \
	  echo "installing fluidsynth and fluid-soundfont-gm (the synth benchmark's reference)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fluidsynth fluid-soundfont-gm >/dev/null; }

bench: build jackd rttests fluidsynth
	$(BIN)/riffd bench synth --json
	$(BIN)/riffd bench folder --json

clean:
	rm -rf $(VENV) build *.egg-info cython_ext/*.so cython_ext/*.c demo-out
