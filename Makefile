# make run   - serve the embedded default (all-MiniLM-L6-v2) through Gunicorn on :8080
# make dev   - the same app on Flask's development server
# make test  - create .venv if missing, install requirements, run the whole test suite
# make install - also install this package (editable) and its `embedding-service` command into .venv
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
PYTEST_ARGS ?=

.PHONY: run dev test venv install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

venv: $(DEV_STAMP)

install: $(RUNTIME_STAMP)
	$(BIN)/pip install --disable-pip-version-check -q -e .

run: $(RUNTIME_STAMP)
	$(BIN)/gunicorn -c gunicorn.conf.py embedding_service.wsgi:app

dev: $(RUNTIME_STAMP)
	$(BIN)/python -m embedding_service

test: $(DEV_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing, a suite that runs nothing proves nothing"; fi; exit $$rc

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
