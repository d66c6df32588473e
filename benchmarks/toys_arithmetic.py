"""Do the bundled models add? Two-operand addition with results below 100 (Nikankin et al.'s
"bag of heuristics" needs a model that adds before its neurons can be studied).

    python benchmarks/toys_arithmetic.py                     # smollm2-135m and gemma3-270m, every pair
    python benchmarks/toys_arithmetic.py --models smollm2-135m
    python benchmarks/toys_arithmetic.py --quick             # results below 20, smollm2-135m only

For each model and prompt format (``plain``: "a+b="; ``few_shot``: three solved examples
first), the share of pairs with ``a + b < 100`` (600 drawn at random by default, the same
for every model and format; ``--pairs 0``: all 5,050) answered exactly by greedy decoding. Writes ``benchmarks/results/toys_arithmetic[_quick].json`` and a PNG per model
(which pairs are right).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

import mechscope
from mechscope.results import write_json
from mechscope.toys.arithmetic import addition_accuracy

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--quick", action="store_true", help="results below 20, the first model only")
    parser.add_argument("--pairs", type=int, default=600,
                        help="random pairs per model (seeded; 0: all 5,050). 600 give accuracy ± 2%%")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    max_result = 20 if args.quick else 100
    models = args.models[:1] if args.quick else args.models
    suffix = "_quick" if args.quick else ""
    report = {"max_result": max_result, "machine": platform.processor() or platform.machine(), "models": {}}
    for name in models:
        started = time.perf_counter()
        model = mechscope.load_model(name)
        result = addition_accuracy(model, max_result=max_result, n_pairs=args.pairs or None)
        seconds = time.perf_counter() - started
        for fmt, value in result.accuracy.items():
            print(f"{name:14s} {fmt:9s} accuracy {value:.3f}  (one-digit results "
                  f"{result.by_result_digits[fmt]['one digit']:.3f}, two-digit {result.by_result_digits[fmt]['two digits']:.3f})")
        report["models"][name] = {**{k: v for k, v in result.to_dict().items() if k != "grid"}, "seconds": seconds}
        result.plot().savefig(RESULTS / f"toys_arithmetic_{name}{suffix}.png", dpi=90)
    path = write_json(RESULTS / f"toys_arithmetic{suffix}.json", report)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
