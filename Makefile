# Portico: `make run` starts everything on this machine, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test test-faults bench install clean translations

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Portico needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/portico dev

test: $(STAMP)
	@.ci/chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fault suite: processes and NATS servers killed under load on loopback ports; prints what it counted.
test-faults: $(STAMP)
	$(BIN)/python -m pytest tests/faults $(PYTEST_ARGS)

# Every benchmark, one after the other; the figures and their in-run baselines go to bench/results.md.
bench: $(STAMP)
	$(BIN)/python bench/all.py

# Extract the pages' strings and merge them into every catalogue; translate the new entries, then commit.
# `gettext(request, "…")` in Python takes the message second; Jinja's `{% trans %}` blocks are reported as a
# one-argument `gettext`, hence `gettext:1,1t`.
WEB := services/gateway/web
translations: $(STAMP)
	$(BIN)/pybabel extract -F $(WEB)/babel.cfg -k gettext:2 -k gettext:1,1t -k _ --no-location --sort-output \
		--project=Portico -o $(WEB)/translations/messages.pot .
	$(BIN)/pybabel update -i $(WEB)/translations/messages.pot -d $(WEB)/translations --no-fuzzy-matching

clean:
	rm -rf $(VENV) var
