# Two entry points for people: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint venv chat migrate bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Start the bot: Telegram if TELEGRAM_BOT_TOKEN is set, otherwise the terminal chat on SQLite.
run: $(STAMP)
	$(PY) -m bot run

## Lint, type-check and run the whole test suite.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

chat: $(STAMP)
	$(PY) -m bot chat

migrate: $(STAMP)
	$(PY) -m bot migrate

bench: $(STAMP)
	$(PY) bench/throughput.py --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
