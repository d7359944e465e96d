# vfiobench — the two commands are `make report` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SITE = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
SAMPLE ?= data/sample
REPORTS ?= reports

.PHONY: report test lint bench notebook system venv clean-venv series

## make report: create .venv, install, render data/sample/ into reports/ (A/B report, a page per cell, variant and kind, index of every run)
report: $(VENV)/.installed
	$(VENV)/bin/vfiobench report $(SAMPLE) --no-runs --experiment auto --cover-letter $(REPORTS)/cover-letter.patch
	$(VENV)/bin/vfiobench report $(SAMPLE) --compare --run-pages representative --jobs 2 --out $(REPORTS)

## make test: system packages (as root), test dependencies, BCC into the venv, then the whole suite
test: system $(VENV)/.installed-test
	# what this machine can probe (merges Debian's kernel headers for BCC when needed); never fails
	-$(VENV)/bin/vfiobench doctor --prepare-headers --no-compile
	$(PY) -m pytest

## make lint: ruff + mypy --strict on vfiobench/
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check vfiobench tests benchmarks
	$(VENV)/bin/ruff format --check vfiobench
	$(VENV)/bin/mypy

## make bench: benchmarks, each a ratio against a baseline measured side by side
bench: system $(VENV)/.installed-test
	$(PY) -m benchmarks

## make series: the cover letter of the auto-detection series against the newest Debian QEMU source
## vfiobench builds (series/10.2: sid's 10.2.2, for trixie-backports), evidence from data/sample's `auto` runs
series: $(VENV)/.installed
	$(VENV)/bin/vfiobench report $(SAMPLE) --no-runs --experiment auto \
		--cover-letter vfiobench/qemu/series/10.2/0000-cover-letter.patch

## make notebook: JupyterLab on notebooks/ with a registered `vfiobench` kernel (works as root; prints the URL)
notebook: $(VENV)/.installed-notebook
	$(PY) -m vfiobench.report.jupyter $(NOTEBOOK_ARGS)

system:
	./.ci/setup-system

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	touch $@

$(VENV)/.installed: $(VENV)/.created pyproject.toml
	$(PY) -m pip install -q -e .
	$(PY) -m ipykernel install --prefix $(VENV) --name vfiobench --display-name "vfiobench" >/dev/null
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	# the notebook extra too: the JupyterLab test starts the server `make notebook` runs
	$(PY) -m pip install -q -e '.[test,notebook]'
	# BCC: Debian's module, symlinked in (pip has no real BCC; a .pth would drag in all of dist-packages)
	if [ -d /usr/lib/python3/dist-packages/bcc ]; then ln -sfn /usr/lib/python3/dist-packages/bcc $(SITE)/bcc; fi
	touch $@

$(VENV)/.installed-notebook: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[notebook]'
	touch $@

clean-venv:
	rm -rf $(VENV)
