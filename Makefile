# The two set-up commands: `make demo` and `make test`. Both create the environment on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint system-deps browser-deps clean

# Debian packages: libsndfile1 (fairseq2n links it), flite (corpus voices); optional
# default-jre-headless (pycocoevalcap's METEOR and PTB tokenizer are Java; ~44 MB, runs offline;
# without it METEOR is reported as unavailable).
system-deps:
	@if ! ldconfig -p | grep -q libsndfile.so.1 || ! command -v flite >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsndfile1 flite >/dev/null; \
		else echo "please install the Debian packages libsndfile1 and flite (sudo apt-get install libsndfile1 flite)"; exit 1; fi; \
	fi
	@if ! command -v java >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; } \
			|| echo "note: could not install java; METEOR will be reported as unavailable"; \
		else echo "note: no java; METEOR will be reported as unavailable (sudo apt-get install default-jre-headless)"; fi; \
	fi

# Debian's headless Chromium and its driver, for the browser test of `tmt serve` (about 300 MB;
# `make test` only: the test is skipped, saying why, where they are missing)
browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
			|| echo "note: could not install chromium; the browser test will be skipped"; \
		else echo "note: no chromium; the browser test will be skipped (sudo apt-get install chromium chromium-driver)"; fi; \
	fi

$(STAMP): setup.cfg pyproject.toml constraints.txt | system-deps
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,eval,serve]' -c constraints.txt
	touch $@

demo: $(STAMP)
	$(VENV)/bin/tmt demo --out demo_out

test: $(STAMP) browser-deps
	$(VENV)/bin/ruff check tmt tests benchmarks
	$(VENV)/bin/mypy tmt
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check tmt tests benchmarks
	$(VENV)/bin/mypy tmt

clean:
	rm -rf $(VENV) build *.egg-info
