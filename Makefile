# Vanity — two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs what it needs from the project's own files.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PIP    := $(PY) -m pip
MODEL  := edge/data/models/vanity-default.tflite

.PHONY: demo test lint model tone-model assets teacher bench soak systemd-check systemd-deps browser-deps check-aarch64 pi-cost clean help

help:
	@echo "make demo   - install the device runtime and run the mirror on the demo source (http://127.0.0.1:8080/)"
	@echo "make test   - install everything the tests need and run the whole suite"
	@echo "make model  - rebuild the default model bundle from real faces (DATA=../shared/data) -> train -> convert"
	@echo "make tone-model - refit the learned skin-tone model on grouped LFW people (after make model; DATA=../shared/data)"
	@echo "make bench  - per-stage benchmark on the demo source"
	@echo "make check-aarch64 - the device path on an emulated Raspberry Pi 4 (root; SUITE=trixie: Python 3.13, PI=pi5)"
	@echo "make pi-cost - per-stage instruction counts on an emulated Pi 4 and Pi 5, with estimated ms (root; UPDATE=1 rewrites the baseline)"
	@echo "make teacher - install the labelling teacher (MediaPipe 0.10.21 face models from PyPI) into .cache/teacher"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The device runtime only: no TensorFlow.
$(VENV)/.runtime: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

# Workstation + test tools.
$(VENV)/.dev: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[train,dev]'
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/vanity run --source demo

test: $(VENV)/.dev browser-deps systemd-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy edge convert
	$(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy edge convert

# Headless Chromium for the kiosk's browser tests (Debian packages; skipped if apt is unavailable).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "chromium not installed: browser tests will be skipped"; }

# systemd-analyze and shellcheck for the unit checks (Debian packages; skipped if apt is unavailable).
systemd-deps:
	@bash systemd/check.sh deps || echo "systemd-analyze not installed: systemd tests will be skipped"
	@command -v shellcheck >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; } || true

assets: $(VENV)/.dev
	$(PY) -m training.assets

# The teacher for `vanity label`: MediaPipe's bundled face models, run through LiteRT.
teacher: $(VENV)/.runtime
	$(PY) -m training.teacher_assets --dest .cache/teacher

# Rebuild the default bundle: real faces (DATA, as published) + synthetic faces -> train -> convert.
DATA ?= ../shared/data
model: $(VENV)/.dev teacher
	$(PY) -m convert.default_model --out $(MODEL) --data-root $(DATA)

# Refit the learned tone model on the bundle's skin masks (about 20 s): after every make model.
tone-model: $(VENV)/.runtime
	$(PY) -m training.tone_fit --lfw $(DATA)/lfw/lfw_funneled --model $(MODEL) --out edge/data/models/tone-model.json

bench: $(VENV)/.runtime
	$(BIN)/vanity bench --source demo --frames 600

soak: $(VENV)/.dev
	$(PY) benchmarks/soak.py --frames 20000

systemd-check:
	bash systemd/check.sh

# The device path on an emulated Raspberry Pi: a Debian arm64 root and the aarch64 wheels of the
# plain install under qemu-user; `vanity analyze` there must label the golden photos as here.
# Needs root; cached in ~/.cache/vanity-aarch64 (VANITY_AARCH64_CACHE). See README, "Raspberry Pi".
SUITE ?= bookworm
PI     ?= pi4
IMAGES ?= golden
check-aarch64: $(VENV)/.dev
	$(PY) deploy/check_aarch64.py check --suite $(SUITE) --cpu $(PI) --images $(IMAGES)

# What each stage costs a Pi, counted (not timed) under qemu-user with the project's plugin, in the
# check-aarch64 root. GATE=1 fails when a frame grew > 5 % over benchmarks/pi_cost_baseline.json;
# UPDATE=1 rewrites that baseline; CALIBRATE=1 also counts the reference model (TensorFlow).
pi-cost: $(VENV)/.dev
	$(PY) deploy/pi_cost.py $(if $(GATE),--gate) $(if $(UPDATE),--update) $(if $(CALIBRATE),--calibrate)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
