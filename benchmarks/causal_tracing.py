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
* both grids must agree within 1e-4 (probabilities); the time ratio is reported (target ≥ 5×);
* floating-point operations of both, counted by ``torch.utils.flop_counter`` (matrix
  products and attention): the fast path's by running it under the counter, the
  reference's as one counted forward times its number of forwards (every forward has the
  same shape; restoring a state costs no products). Their ratio is what the fast path
  saves in arithmetic; a time ratio above it comes from running bigger batches.

Sides alternate per fact. On a shared machine wall times are upper bounds; the ratio is
what to read. Writes ``benchmarks/results/causal_tracing[_quick]_<model>.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import mechscope
from mechscope.facts import builtin_facts, known_facts
from mechscope.facts.tokens import subject_span
from mechscope.hooks.tokens import TokenBatch
from mechscope.tracing import TraceConfig, causal_trace, causal_trace_reference, embedding_std
from mechscope.tracing.config import TOKEN_SETS


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def counted(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@torch.no_grad()
def reference_flops(model, fact, config: TraceConfig) -> int:
    """One forward of the clean row and the noised rows, times the reference's forwards."""
    batch = model.tokenize(fact.prompt)
    n_pos = batch.ids.shape[1]
    rows = config.samples + 1
    one = counted(lambda: model.run_with_hooks(
        TokenBatch(batch.ids.repeat(rows, 1), batch.attention_mask.repeat(rows, 1)), fwd=[]))
    span = subject_span(model, fact.prompt, fact.subject)
    forwards = len(config.kinds) * model.cfg.n_layers * len(TOKEN_SETS[config.tokens](span, n_pos)) + 1
    return one * forwards


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
        flops_fast = counted(lambda: causal_trace(model, fact, config=config, noise_std=std))
        flops_slow = reference_flops(model, fact, config)
        rows.append({"prompt": fact.prompt, "subject": fact.subject, "tokens": len(fast.tokens),
                     "fast_s": round(t_fast, 2), "reference_s": round(t_slow, 2), "ratio": round(t_slow / t_fast, 2),
                     "max_abs_diff": diff, "low": fast.low, "high": fast.high, "fast_flops": flops_fast,
                     "reference_flops": flops_slow, "flop_ratio": round(flops_slow / flops_fast, 2)})
        print(f"{fact.prompt!r}: fast {t_fast:.1f}s, reference {t_slow:.1f}s, ratio {t_slow / t_fast:.2f}x, "
              f"max |diff| {diff:.2e}; FLOPs {flops_fast:.3g} vs {flops_slow:.3g}, ratio "
              f"{flops_slow / flops_fast:.2f}x", flush=True)
    total_fast = sum(r["fast_s"] for r in rows)
    total_slow = sum(r["reference_s"] for r in rows)
    summary = {"model": args.model, "config": vars(config) | {"kinds": list(config.kinds)}, "noise_std": std,
               "facts": rows, "fast_s": round(total_fast, 2), "reference_s": round(total_slow, 2),
               "ratio": round(total_slow / total_fast, 2),
               "flop_ratio": round(sum(r["reference_flops"] for r in rows) / sum(r["fast_flops"] for r in rows), 2),
               "threads": torch.get_num_threads(), "max_abs_diff": max(r["max_abs_diff"] for r in rows),
               "agree_1e-4": all(r["max_abs_diff"] < 1e-4 for r in rows)}
    print(f"total: fast {total_fast:.1f}s, reference {total_slow:.1f}s, ratio {summary['ratio']}x "
          f"(target >= 5x); FLOP ratio {summary['flop_ratio']}x; results agree within 1e-4: {summary['agree_1e-4']}")
    out = Path(__file__).parent / "results" / f"causal_tracing{'_quick' if args.quick else ''}_{args.model}.json"
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
