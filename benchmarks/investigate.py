"""The whole investigation on smollm2-135m IOI: each stage's wall time, the total, and a
second identical run served from the results store.

    python benchmarks/investigate.py            # 32 prompts (target: <= 10 min on 2 cores)
    python benchmarks/investigate.py --quick    # the --quick preset (target: <= 2 min)

Each run uses a fresh results store in a temporary directory, so the first run computes
everything and the second is served from the store (target: <= 10 s, model load
included). Writes ``benchmarks/results/investigate[_quick].json``: stage times, the
circuit's numbers, and the two wall times. Run it on a quiet machine: wall times
measured while other processes share the cores are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="ioi")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    import mechscope
    from mechscope.investigate import InvestigateOptions, investigate
    from mechscope.report import render_investigation
    from mechscope.store import open_store

    options = InvestigateOptions.quick() if args.quick else InvestigateOptions()
    report = {"model": args.model, "task": args.task, "quick": args.quick, "options": options.to_dict(),
              "machine": platform.machine(), "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "results.db")
        model = mechscope.load_model(args.model)
        report["load_seconds"] = time.perf_counter() - start
        first = investigate(model, args.task, options, store=store,
                            on_stage=lambda s, e, t: e != "start" and print(f"{s}: {t:.1f} s", flush=True))
        render_investigation(first)
        report["first_run_seconds"] = time.perf_counter() - start
        report["stage_seconds"] = first.seconds
        if first.circuit is not None:
            check = first.circuit.check
            report["circuit"] = {"edges": check.n_edges, "fraction": check.fraction, "f": check.f_discovery,
                                 "f_heldout": check.f_heldout, "heldout_error": check.heldout_error,
                                 "complement_f": check.complement_f, "reached": first.circuit.reached}
        report["claims"] = [c.text for c in first.summary.claims]
        report["caveats"] = [c.text for c in first.summary.caveats]
        store.close()
        # A new process's view: load the model, open the store, get every stage from it.
        again = time.perf_counter()
        store = open_store(Path(tmp) / "results.db")
        model = mechscope.load_model(args.model)
        second = investigate(model, args.task, options, store=store, progress=False)
        render_investigation(second)
        report["second_run_seconds"] = time.perf_counter() - again
        report["second_run_cached_stages"] = list(second.cached)
        store.close()
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"investigate{'_quick' if args.quick else ''}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"first run {report['first_run_seconds']:.0f} s (load included), second {report['second_run_seconds']:.1f} s; "
          f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
