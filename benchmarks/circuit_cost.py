"""What edge attribution costs: EAP-IG over the full graph of smollm2-135m, and how the
bookkeeping grows (or not) with query heads under grouped-query attention.

    python benchmarks/circuit_cost.py            # 32 IOI prompts, 5 steps (a few minutes on 2 cores)
    python benchmarks/circuit_cost.py --quick    # 8 prompts, 2 steps, fewer configurations

Each measurement runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``)
is its own; the model's own memory is reported separately (RSS after loading).

Part 1: EAP-IG on inputs (5 steps, prompts in batches of 8) over every edge of
smollm2-135m on 32 IOI prompts: wall time, peak RSS, and the time of one plain forward
pass of the same prompts for scale.

Part 2: tiny Llama models with 16 query heads and 16, 4 or 1 key/value heads: receivers
per layer (``n_heads + 2·n_kv_heads + 1``), the per-prompt gradient bookkeeping they
imply, and the measured EAP wall time and peak RSS. Senders (every query head's output)
are the same in all three.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _smollm2(n: int, steps: int) -> dict:
    import resource
    import time

    import torch

    import mechscope
    from mechscope.circuits.attribution import edge_attribution_patching
    from mechscope.tasks.ioi import ioi

    model = mechscope.load_model("smollm2-135m")
    task = ioi(model, n=n)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with torch.no_grad():
        model(task.clean)
        start = time.perf_counter()
        model(task.clean)
        forward = time.perf_counter() - start
    start = time.perf_counter()
    scores = edge_attribution_patching(model, task, method="eap-ig-inputs", steps=steps, batch_size=8, progress=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n_prompts": n, "steps": steps, "n_edges": scores.graph.n_edges, "pos": task.clean.ids.shape[1],
            "seconds": seconds, "forward_seconds": forward, "peak_rss_mb": peak, "rss_after_load_mb": loaded}


def _tiny(n_kv: int, n: int) -> dict:
    import resource
    import time

    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from mechscope import HookedModel
    from mechscope.circuits.attribution import edge_attribution_patching
    from mechscope.circuits.edge_run import Layout
    from mechscope.hooks.tokens import TokenBatch
    from mechscope.tasks.task import Task

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=512, hidden_size=512, intermediate_size=1024, num_hidden_layers=4,
                         num_attention_heads=16, num_key_value_heads=n_kv, max_position_embeddings=64)
    model = HookedModel(AutoModelForCausalLM.from_config(config).eval(), tokenizer=None, name=f"llama-kv{n_kv}")
    ids = torch.randint(512, (n, 32))
    bad = ids.clone()
    bad[:, 5] = (bad[:, 5] + 1) % 512
    task = Task(name="random", clean=TokenBatch(ids, torch.ones_like(ids)), corrupt=TokenBatch(bad, torch.ones_like(bad)),
                answers=torch.zeros(n, dtype=torch.long), wrong=torch.ones(n, dtype=torch.long))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    scores = edge_attribution_patching(model, task, method="eap", batch_size=n, progress=False)
    seconds = time.perf_counter() - start
    layout = Layout(scores.graph)
    per_prompt = layout.copies * 32 * 512 * 4  # one layer's receiver inputs, float32
    return {"n_kv_heads": n_kv, "n_heads": 16, "receivers_per_layer": layout.copies + 1,
            "senders": len(scores.graph.senders), "n_edges": scores.graph.n_edges,
            "receiver_inputs_per_layer_per_prompt_kb": per_prompt / 1024, "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mb": before}


def _child(kind: str, *args: int) -> dict:
    code = f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import circuit_cost as c; " \
           f"print(json.dumps(c._{kind}(*{args!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, steps, kvs = (8, 2, (16, 1)) if args.quick else (32, 5, (16, 4, 1))
    report = {"smollm2": _child("smollm2", n, steps)}
    s = report["smollm2"]
    print(f"EAP-IG ({s['steps']} steps) over {s['n_edges']:,} edges, {s['n_prompts']} IOI prompts: "
          f"{s['seconds']:.1f} s ({s['seconds'] / s['forward_seconds']:.0f} forward passes of the same prompts), "
          f"peak RSS {s['peak_rss_mb']:.0f} MB (model loaded: {s['rss_after_load_mb']:.0f} MB)")
    report["grouping"] = [_child("tiny", kv, 8) for kv in kvs]
    print(f"{'kv heads':>8} {'receivers/layer':>15} {'senders':>8} {'KB/prompt/layer':>16} {'EAP s':>6} {'peak MB':>8}")
    for row in report["grouping"]:
        print(f"{row['n_kv_heads']:>8} {row['receivers_per_layer']:>15} {row['senders']:>8} "
              f"{row['receiver_inputs_per_layer_per_prompt_kb']:>16.0f} {row['seconds']:>6.2f} {row['peak_rss_mb']:>8.0f}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"circuit_cost{'_quick' if args.quick else ''}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
