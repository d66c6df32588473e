"""Does the tuned lens beat the logit lens at every layer on held-out text?

    python benchmarks/tuned_lens.py            # smollm2-135m, train on the default corpus, evaluate
    python benchmarks/tuned_lens.py --quick    # a smoke test, about a minute
    python benchmarks/tuned_lens.py --save-lens lenses/smollm2   # keep the trained lens

Trains a tuned lens on the training split of the default corpus (mechscope.corpus:
Python's pydoc topics, offline), then, on its held-out split (rows the lens never saw),
measures per layer the mean KL(model's output ‖ lens) and the next-token perplexity of
both lenses, and prints PASS/FAIL per layer for the claim "tuned KL < logit KL". The exit
status is 1 if any layer fails in a full run (a --quick run only reports).

Writes ``benchmarks/results/tuned_lens[_quick].json`` (and ``.png``, the KL plot).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import mechscope
from mechscope.corpus import default_texts
from mechscope.lens import TunedLensConfig, compare_lenses, train_tuned_lens

RESULTS = Path(__file__).parent / "results"

FULL = {"token_budget": 16_384, "eval_tokens": 4_096, "batch_size": 4}
"""Training tokens (32 steps of 4 × 128: about 6 minutes on 2 idle cores with bfloat16
matmuls) and held-out tokens evaluated (about 2.5 minutes)."""
QUICK = {"token_budget": 512, "eval_tokens": 256, "batch_size": 2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--quick", action="store_true", help="tiny budget: a smoke test of the whole pipeline")
    parser.add_argument("--tokens", type=int, help=f"training tokens (default {FULL['token_budget']})")
    parser.add_argument("--eval-tokens", type=int, help=f"held-out tokens (default {FULL['eval_tokens']})")
    parser.add_argument("--batch-size", type=int, help="sequences of 128 tokens per step (default 4)")
    parser.add_argument("--lr", type=float, default=TunedLensConfig().lr)
    parser.add_argument("--save-lens", type=Path, help="also save the trained lens in this directory")
    args = parser.parse_args()
    budget = QUICK if args.quick else FULL
    config = TunedLensConfig(
        token_budget=args.tokens or budget["token_budget"],
        batch_size=args.batch_size or budget["batch_size"],
        lr=args.lr,
        # bfloat16 unembedding matmuls halve training time where the CPU has avx512_bf16/AMX.
        unembed_dtype="bfloat16" if _fast_bf16() else "float32",
    )
    model = mechscope.load_model(args.model)
    texts = default_texts()

    start = time.perf_counter()
    lens = train_tuned_lens(model, texts, config=config)
    train_seconds = time.perf_counter() - start
    if args.save_lens:
        lens.save(args.save_lens)
    start = time.perf_counter()
    result = compare_lenses(model, lens, texts, max_tokens=args.eval_tokens or budget["eval_tokens"],
                            batch_size=config.batch_size)
    eval_seconds = time.perf_counter() - start

    wins = result.tuned_wins
    print(f"\n{args.model}: trained on {lens.training_info['tokens']} tokens in {train_seconds:.0f} s, "
          f"evaluated on {result.n_tokens} held-out tokens in {eval_seconds:.0f} s")
    print(f"{'layer':>6} {'logit KL':>9} {'tuned KL':>9} {'margin':>8} {'logit ppl':>10} {'tuned ppl':>10}")
    for i, label in enumerate(result.layer_labels):
        verdict = "" if i == len(wins) else ("PASS" if wins[i] else "FAIL")
        print(f"{label:>6} {result.logit_kl[i]:9.3f} {result.tuned_kl[i]:9.3f} "
              f"{result.logit_kl[i] - result.tuned_kl[i]:8.3f} {result.logit_perplexity[i]:10.4g} "
              f"{result.tuned_perplexity[i]:10.4g}  {verdict}")
    failed = [result.layer_labels[i] for i, won in enumerate(wins) if not won]
    margins = (result.logit_kl - result.tuned_kl)[:-1]
    holds = not failed
    print(f"\nclaim 'the tuned lens beats the logit lens at every layer on held-out text': "
          f"{'PASS' if holds else 'FAIL'} ({len(wins) - len(failed)}/{len(wins)} layers; "
          f"KL margin min {margins.min():.3f}, max {margins.max():.3f} nats)"
          + ("  [--quick: a smoke test; the claim is checked by the full run]" if args.quick else ""))

    stem = "tuned_lens_quick" if args.quick else "tuned_lens"
    report = {
        "model": args.model,
        "quick": args.quick,
        "claim": {"holds": holds, "failed_layers": failed, "min_margin_nats": round(float(margins.min()), 4),
                  "max_margin_nats": round(float(margins.max()), 4)},
        "train": {**lens.training_info, "seconds": round(train_seconds, 1)},
        "eval": {"seconds": round(eval_seconds, 1), **result.to_dict()},
        "per_layer": [
            {"layer": label, "logit_kl": round(float(result.logit_kl[i]), 4),
             "tuned_kl": round(float(result.tuned_kl[i]), 4),
             "logit_perplexity": round(float(result.logit_perplexity[i]), 2),
             "tuned_perplexity": round(float(result.tuned_perplexity[i]), 2),
             "tuned_wins": None if i == len(wins) else wins[i]}
            for i, label in enumerate(result.layer_labels)
        ],
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    result.plot().savefig(RESULTS / f"{stem}.png", dpi=100)
    print(f"wrote {RESULTS / (stem + '.json')} and {stem}.png")
    return 0 if holds or args.quick else 1


def _fast_bf16() -> bool:
    """Whether bfloat16 matmuls are native here (a GPU, or a CPU with avx512_bf16/AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


if __name__ == "__main__":
    raise SystemExit(main())
