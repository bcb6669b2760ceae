# Paddy: `make demo` starts everything locally, `make test` lints and runs every test.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
STATE  ?= .paddy

.PHONY: install chromium demo lint fmt test down clean

# The virtualenv with every service's extra (torch comes from the trainer extra).
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: Paddy needs Python 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[trainer,api,dashboard,flower,local,dev]'
	touch $(STAMP)

install: $(STAMP)

# The dashboard's browser test drives Debian's Chromium through Playwright (never a browser
# download), with an emoji font so that screenshots show the dashboard's icons. Installed with
# apt when missing: as root directly, else through sudo. Without apt, Chromium must be there
# already (the font is then optional).
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
EMOJI_FONT := fonts-noto-color-emoji
chromium:
	@missing=""; \
	  command -v chromium >/dev/null || missing="chromium"; \
	  command -v dpkg >/dev/null && ! dpkg -s $(EMOJI_FONT) >/dev/null 2>&1 && missing="$$missing $(EMOJI_FONT)"; \
	  [ -z "$$missing" ] || { \
	    command -v apt-get >/dev/null || { echo "chromium not found and no apt-get: install Chromium (the browser test needs it)"; exit 1; }; \
	    [ -z "$(SUDO)" ] || command -v sudo >/dev/null || { echo "run 'apt-get install -y$$missing' as root"; exit 1; }; \
	    echo "installing$$missing (apt-get)"; \
	    $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  }

demo: install
	$(BIN)/python -m infra.demo $(STATE)/data
	$(BIN)/paddy up --detach --state-dir $(STATE)
	$(BIN)/paddy demo
	@echo
	@echo "Paddy is running: dashboard http://127.0.0.1:8501  API http://127.0.0.1:8000/docs  Flower http://127.0.0.1:5555"
	@echo "Stop it with: make down"

# What CI would check: lint rules, formatting, types (mypy's settings are in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Rewrites files: import order and other safe fixes first, then the formatting `lint` checks.
fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install chromium lint
	$(BIN)/python -m pytest

down:
	$(BIN)/paddy down --state-dir $(STATE)

clean: down
	rm -rf $(STATE)
