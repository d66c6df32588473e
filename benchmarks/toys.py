"""The field's findings reproduced on toy models, checked against their papers' claims.

    python benchmarks/toys.py grokking              # p = 113, Nanda et al.'s setup (hours on 2 busy cores)
    python benchmarks/toys.py othello superposition formation
    python benchmarks/toys.py all --quick           # every finding on its small configuration

Each name runs ``mechscope.toys.findings.FINDINGS[name]``: training is cached under
mechscope's cache directory and resumes from its last checkpoint when interrupted (run
the same command again), so a second run only analyses. Writes
``benchmarks/results/toys_<name>[_quick].json`` (the checks, the headline numbers and
every analysis) and one PNG per figure. The exit status is 1 if a check of a full run
fails (a --quick run only reports). ``benchmarks/toys_arithmetic.py`` measures the
arithmetic finding (pretrained models; nothing to train).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from mechscope.toys.findings import FINDINGS

RESULTS = Path(__file__).parent / "results"
TRAINED = ("superposition", "grokking", "othello", "formation")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", choices=[*TRAINED, "all"])
    parser.add_argument("--quick", action="store_true", help="the small configurations")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the analyses")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = TRAINED if "all" in args.names else args.names
    suffix = "_quick" if args.quick else ""
    failed = []
    for name in names:
        started = time.perf_counter()
        findings = FINDINGS[name](quick=args.quick, progress=True)
        seconds = time.perf_counter() - started
        for claim, held in findings.checks.items():
            print(f"{'PASS' if held else 'FAIL'}  {name}: {claim}")
            if not held:
                failed.append(f"{name}: {claim}")
        for key, value in findings.numbers.items():
            print(f"      {key}: {value:.4g}" if isinstance(value, float) else f"      {key}: {value}")
        data = {**findings.to_dict(), "seconds": seconds, "machine": platform.processor() or platform.machine(),
                "note": "seconds include training unless the run was cached; measured on a shared machine"}
        from mechscope.results import write_json

        print(f"wrote {write_json(RESULTS / f'toys_{name}{suffix}.json', data)}")
        for key, figure in findings.figures().items():
            png = RESULTS / f"toys_{name}_{key}{suffix}.png"
            figure.savefig(png, dpi=100)
            print(f"wrote {png}")
    return 1 if failed and not args.quick else 0


if __name__ == "__main__":
    raise SystemExit(main())
