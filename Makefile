# Two commands set everything up: `make demo` and `make test`. Each makes .venv on its own.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test test-all system-deps image clean

$(STAMP): setup.cfg pyproject.toml scripts/install-system-deps.sh
	scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[dev,sim]'
	touch $@

system-deps:
	scripts/install-system-deps.sh

demo: $(STAMP)
	$(VENV)/bin/kiosk demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m "not hardware"

# make image BASE=2024-11-19-raspios-bookworm-arm64-lite.img [OUT=out/kiosk.img]  (docs/provisioning.md)
OUT ?= out/kiosk.img
image: $(STAMP)
	@test -n "$(BASE)" || { echo "usage: make image BASE=path/to/raspios-lite.img [OUT=$(OUT)]" >&2; exit 2; }
	mkdir -p $(dir $(OUT))
	image-build/build.sh $(BASE) $(OUT)

clean:
	rm -rf $(VENV) build *.egg-info
