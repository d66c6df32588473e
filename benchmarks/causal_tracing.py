"""Causal tracing: mechscope's fast path against the paper's algorithm, on identical results.

    python benchmarks/causal_tracing.py                       # smollm2-135m, 3 known facts, all three kinds
    python benchmarks/causal_tracing.py --model gemma3-270m
    python benchmarks/causal_tracing.py --quick               # 1 fact

One process, same model, same facts, same noise (seeded), the paper's settings (noise 3×
the subjects' embedding std, 10 samples, window 10, hidden / mlp / attn):

* fast: :func:`mechscope.tracing.causal_trace` (a token's restorations in one batch, each
  joining at its block, replayed from cached states, last-position logits only);
* reference: :func:`mechscope.tracing.causal_trace_reference`, rome's ``trace_with_patch``
  loop: one full forward of the clean row and the 10 noised rows per (kind, layer, token);
* both grids must agree within 1e-4 (probabilities); the time ratio is reported (target ≥ 5×).

Sides alternate per fact. On a shared machine wall times are upper bounds; the ratio is
what to read. Writes ``benchmarks/results/causal_tracing[_quick]_<model>.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import mechscope
from mechscope.facts import builtin_facts, known_facts
from mechscope.tracing import TraceConfig, causal_trace, causal_trace_reference, embedding_std


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--facts", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_facts = 1 if args.quick else args.facts
    model = mechscope.load_model(args.model)
    candidates = list(builtin_facts())
    random.Random(0).shuffle(candidates)
    known = list(known_facts(model, candidates[:200]).facts)
    facts = known[:n_facts]
    config = TraceConfig()
    std = config.noise * embedding_std(model, known[:100])
    rows = []
    for i, fact in enumerate(facts):
        order = ("fast", "reference") if i % 2 == 0 else ("reference", "fast")
        runs = {}
        for side in order:
            trace = causal_trace if side == "fast" else causal_trace_reference
            runs[side] = timed(lambda trace=trace: trace(model, fact, config=config, noise_std=std))
        (fast, t_fast), (slow, t_slow) = runs["fast"], runs["reference"]
        diff = float((fast.scores - slow.scores).abs().max())
        rows.append({"prompt": fact.prompt, "subject": fact.subject, "tokens": len(fast.tokens),
                     "fast_s": round(t_fast, 2), "reference_s": round(t_slow, 2), "ratio": round(t_slow / t_fast, 2),
                     "max_abs_diff": diff, "low": fast.low, "high": fast.high})
        print(f"{fact.prompt!r}: fast {t_fast:.1f}s, reference {t_slow:.1f}s, ratio {t_slow / t_fast:.2f}x, "
              f"max |diff| {diff:.2e}", flush=True)
    total_fast = sum(r["fast_s"] for r in rows)
    total_slow = sum(r["reference_s"] for r in rows)
    summary = {"model": args.model, "config": vars(config) | {"kinds": list(config.kinds)}, "noise_std": std,
               "facts": rows, "fast_s": round(total_fast, 2), "reference_s": round(total_slow, 2),
               "ratio": round(total_slow / total_fast, 2), "max_abs_diff": max(r["max_abs_diff"] for r in rows),
               "agree_1e-4": all(r["max_abs_diff"] < 1e-4 for r in rows)}
    print(f"total: fast {total_fast:.1f}s, reference {total_slow:.1f}s, ratio {summary['ratio']}x "
          f"(target >= 5x); results agree within 1e-4: {summary['agree_1e-4']}")
    out = Path(__file__).parent / "results" / f"causal_tracing{'_quick' if args.quick else ''}_{args.model}.json"
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
