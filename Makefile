# Paddy: `make demo` starts everything locally, `make test` lints and runs every test.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
STATE  ?= .paddy

.PHONY: install chromium demo lint fmt test down clean

EXTRAS := trainer,api,dashboard,flower,local,dev

# The virtualenv with every service's extra (torch comes from the trainer extra), installed by uv:
# it fetches, unpacks and byte-compiles in parallel where pip goes one package after another (half
# of pip's time or less on a 2-core machine, minutes of CI's time outside pytest). uv reads no pip
# configuration, so UV_LIKE_PIP (below) asks pip's own option parser what `pip install` would use
# here (pip.conf files, PIP_* variables) and gives uv the same indexes, find-links, constraints and
# certificate. Plain pip installs instead when uv cannot be installed or fails, or when pip is
# configured with an option uv would not be given.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: Paddy needs Python 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv && $(BIN)/python -c "$$UV_LIKE_PIP" -e '.[$(EXTRAS)]' \
	  || { echo "installing with pip instead of uv"; \
	       $(BIN)/python -m pip install --quiet --upgrade pip \
	       && $(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'; }
	touch $(STAMP)
$(STAMP): export UV_LIKE_PIP = $(UV_LIKE_PIP_PY)

install: $(STAMP)

# python -c "$$UV_LIKE_PIP" ARG...: `uv pip install ARG...` with the settings `pip install` has
# here, and pip itself upgraded, as the plain pip install does. Exits non-zero if uv fails.
define UV_LIKE_PIP_PY
import os, subprocess, sys
from pip._internal.commands import create_command

def pip_install_options():
    return vars(create_command("install").parse_args([])[0])

env = dict(os.environ)
pip = pip_install_options()
for name in [n for n in os.environ if n.startswith("PIP_")]:
    del os.environ[name]
os.environ["PIP_CONFIG_FILE"] = os.devnull  # no configuration at all: pip's defaults
default = pip_install_options()
given = {"index_url", "no_index", "extra_index_urls", "find_links", "constraints", "cert",
         "trusted_hosts", "timeout", "compile"}
moot = {"disable_pip_version_check", "cache_dir", "progress_bar", "quiet", "verbose", "no_input",
        "retries", "root_user_action", "no_color", "log", "require_venv"}
not_given = sorted(k for k in pip if pip[k] != default[k] and k not in given | moot)
if not_given:
    sys.exit(f"pip is configured with {', '.join(not_given)}, which uv would not be given")

# uv's own configuration files (uv.toml) are not read: pip's settings are the ones that count.
uv = [os.path.join(os.path.dirname(sys.executable), "uv"), "pip", "install", "--quiet",
      "--no-config", "--python", sys.executable]
uv += ["--no-index"] if pip["no_index"] else ["--index-url", pip["index_url"]]
for flag, values in [("--extra-index-url", [] if pip["no_index"] else pip["extra_index_urls"]),
                     ("--find-links", pip["find_links"]), ("--constraint", pip["constraints"]),
                     ("--allow-insecure-host", pip["trusted_hosts"])]:
    for value in values:
        uv += [flag, value]
# pip takes a package's newest version from whichever index has it (uv's default: only the first
# index that has the package). Where two indexes hold the same version, uv still takes the first
# one's file, pip the best-fitting wheel of all: the same release, possibly another build of it.
uv += ["--index-strategy", "unsafe-best-match"]
# pip writes the .pyc files at install; without them every process would compile what it imports
# (each time, where PYTHONDONTWRITEBYTECODE is set).
if pip["compile"]:
    uv += ["--compile-bytecode"]
if pip["cert"]:
    env["SSL_CERT_FILE"] = pip["cert"]
env["UV_HTTP_TIMEOUT"] = str(round(pip["timeout"]))
sys.exit(subprocess.call(uv + ["--upgrade-package", "pip", "pip"] + sys.argv[1:], env=env))
endef

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
