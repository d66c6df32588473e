"""Do the scorers work with each local backend? Ground-truth indicator units, true vs wrong explanations.

    python benchmarks/autointerp_ground_truth.py --store sae-runs/small-l15/acts-neurons
    python benchmarks/autointerp_ground_truth.py --store STORE --backends local:smollm2-135m local:gemma3-270m
    python benchmarks/autointerp_ground_truth.py --store STORE --quick --backends local:gemma3-270m --tag _gemma

Indicator units fire on digits, capitalised words, Python keywords and given words,
computed from the store's token ids (:mod:`mechscope.autointerp.ground_truth`). Each unit
is scored with its true explanation, every other unit's, and a random one; a scorer
works if the truth scores highest. Reports, per backend and scorer, the margin (true
minus best wrong) per unit, how often the truth wins, and the seconds taken; the
embedding scorer (no LM) once. Writes ``benchmarks/results/autointerp_ground_truth*.json``
and a PNG per backend.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="any activation store of the model (token ids are read)")
    parser.add_argument("--model", default="smollm2-135m", help="the store's model (its tokenizer)")
    parser.add_argument("--backends", nargs="+", default=["local:smollm2-135m", "local:gemma3-270m"])
    parser.add_argument("--scorers", nargs="+", default=["detection", "fuzzing", "simulation"])
    parser.add_argument("--words", nargs="+", default=["file", "list"])
    parser.add_argument("--work", default="sae-runs/ground-truth", help="where the records go")
    parser.add_argument("--max-tokens", type=int, default=65536)
    parser.add_argument("--quick", action="store_true", help="8 held-out activating and 8 random examples per unit")
    parser.add_argument("--no-embedding", action="store_true", help="skip the embedding scorer")
    parser.add_argument("--tag", default="", help="suffix of the output file names")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-simulation", type=int, default=10, help="texts the simulator predicts per unit")
    a = parser.parse_args()
    torch.set_num_threads(a.threads)

    from mechscope.activations import ActivationStore
    from mechscope.autointerp import ExampleConfig, build_records, indicator_units, load_all, make_backend
    from mechscope.autointerp.embedders import load_embedder
    from mechscope.autointerp.scorers import ScoreConfig
    from mechscope.autointerp.validate import validate_scorers
    from mechscope.models import load_model

    model = load_model(a.model)
    store = ActivationStore.open(a.store)
    units, truths = indicator_units(model.tokenizer, words=a.words)
    n = 8 if a.quick else 20
    config = ExampleConfig(ctx_len=32, n_test=n, n_test_random=n, max_tokens=a.max_tokens)
    work = Path(a.work) / ("quick" if a.quick else "full")
    built = build_records(store, units, range(units.n_units), work, tokenizer=model.tokenizer, config=config)
    names = [units.unit_name(u) for u in range(units.n_units)]
    kept = [i for i, name in enumerate(names) if name not in dict(built.skipped)]
    records = load_all(work, [names[i] for i in kept])
    truths = [truths[i] for i in kept]
    backends, scorers = a.backends, a.scorers
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"autointerp_ground_truth{'_quick' if a.quick else ''}{a.tag}.json"
    out = {"store": a.store, "tokens_scanned": built.scanned_tokens, "units": [r.name for r in records],
           "n_simulation": a.n_simulation,
           "truths": truths, "examples_per_unit": 2 * n, "backends": {}}

    if not a.no_embedding:
        started = time.perf_counter()
        embedding = validate_scorers(records, truths, backend=None, scorers=["embedding"], embedder=load_embedder())
        out["embedding"] = {"margins": embedding.margins["embedding"], "top_rate": embedding.top_rate["embedding"],
                            "scores": embedding.scores["embedding"], "seconds": time.perf_counter() - started}
        _print("embedding (all-MiniLM-L6-v2)", embedding, "embedding", out["embedding"]["seconds"])
    for spec in backends:
        backend = make_backend(spec, batch_size=8)
        out["backends"][spec] = {}
        for scorer in scorers:
            started = time.perf_counter()
            check = validate_scorers(records, truths, backend=backend, scorers=[scorer],
                                     config=ScoreConfig(n_simulation=a.n_simulation))
            seconds = time.perf_counter() - started
            out["backends"][spec][scorer] = {"margins": check.margins[scorer], "top_rate": check.top_rate[scorer],
                                             "scores": check.scores[scorer], "seconds": seconds}
            _print(f"{spec} {scorer}", check, scorer, seconds)
            check.plot().savefig(RESULTS / f"autointerp_ground_truth_{spec.split(':')[-1]}_{scorer}.png", dpi=110)
            path.write_text(json.dumps(out, indent=1) + "\n")  # after every scorer: a stopped run keeps its numbers
    print(f"wrote {path}")
    return 0


def _print(label: str, check, scorer: str, seconds: float) -> None:
    margins = check.margins[scorer]
    print(f"{label}: truth on top {check.top_rate[scorer]:.0%}, margins "
          f"{', '.join(f'{m:+.2f}' for m in margins)} (mean {sum(margins) / len(margins):+.3f}); {seconds:.0f} s")
    for unit, row in zip(check.units, check.scores[scorer]):
        print(f"   {unit:28s} " + " ".join(f"{v:.2f}" for v in row))


if __name__ == "__main__":
    raise SystemExit(main())
