"""Explain and score real units of smollm2-135m: SAE latents against MLP neurons, with controls.

    python benchmarks/autointerp_features.py --sae sae-runs/small-l15/sae --sae-store sae-runs/small-l15/acts \\
        --neuron-store sae-runs/small-l15/acts-neurons --units 200
    python benchmarks/autointerp_features.py ... --quick          # 8 units a side, detection only

For each kind of unit, ``--units`` units drawn at random (seeded; units that fire in too
few windows are replaced), examples from the stores (never harvested again), the default
explainer and the scorers with ``--backend``, each unit also scored with a shuffled and a
random explanation. The no-LM top-tokens explanations are scored by detection too, as the
baseline. Reports each score's distribution against its controls and the SAE-minus-neuron
difference with a bootstrap 95% interval. Writes ``benchmarks/results/autointerp_features*.json``
and one PNG per kind; explanations and scores stay under ``--work`` in delphi's layout.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--sae", required=True)
    parser.add_argument("--sae-store", required=True)
    parser.add_argument("--neuron-store", required=True)
    parser.add_argument("--neuron-hook", default="blocks.15.mlp.hook_post")
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--backend", default="local:smollm2-135m")
    parser.add_argument("--scorers", nargs="+", default=["detection", "embedding"], help="on every unit")
    parser.add_argument("--subset-scorers", nargs="*", default=["fuzzing", "simulation"],
                        help="on the first --subset units only (they cost more)")
    parser.add_argument("--subset", type=int, default=25)
    parser.add_argument("--explainer", default="default", help="default, contrastive or top-tokens")
    parser.add_argument("--no-baseline", action="store_true", help="skip detection of the top-tokens explanations")
    parser.add_argument("--n-test", type=int, default=10, help="held-out activating (and random) examples per unit")
    parser.add_argument("--work", default="sae-runs/autointerp")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    a = parser.parse_args()
    torch.set_num_threads(a.threads)

    from mechscope.activations import ActivationStore
    from mechscope.autointerp import ExampleConfig, make_backend, neuron_units, sae_units
    from mechscope.autointerp.embedders import load_embedder
    from mechscope.models import load_model
    from mechscope.sae import load_sae

    model = load_model(a.model)
    n_units = 8 if a.quick else a.units
    scorers = ["detection"] if a.quick else a.scorers
    subset_scorers = [] if a.quick else a.subset_scorers
    config = ExampleConfig(ctx_len=32, n_test=a.n_test, n_test_random=a.n_test)
    needs_lm = a.explainer != "top-tokens" or set(scorers + subset_scorers) - {"embedding"} or not a.no_baseline
    backend = make_backend(a.backend, batch_size=8) if needs_lm else None
    embedder = load_embedder() if "embedding" in scorers + subset_scorers else None
    kinds = {"sae": (sae_units(load_sae(a.sae), model), ActivationStore.open(a.sae_store)),
             "neurons": (neuron_units(model, a.neuron_hook), ActivationStore.open(a.neuron_store))}
    out = {"model": a.model, "backend": backend.describe() if backend else None, "explainer": a.explainer,
           "scorers": scorers, "units_per_kind": n_units,
           "subset_scorers": subset_scorers, "subset": a.subset,
           "example_config": asdict(config), "kinds": {}}
    reports = {}
    for kind, (source, store) in kinds.items():
        work = Path(a.work) / ("quick" if a.quick else "full") / kind
        started = time.perf_counter()
        records = _records(source, store, n_units, work, model, config)
        work = work / a.explainer if a.explainer != "default" else work
        reports[kind], baseline, subset = _explain_and_score(records, backend, embedder, scorers, subset_scorers,
                                                             a.subset, work, a.explainer, not a.no_baseline)
        seconds = time.perf_counter() - started
        out["kinds"][kind] = {"module": source.module, "units": [r.unit for r in records], "seconds": seconds,
                              "summary": reports[kind].summary,
                              "top_tokens_detection": baseline.summary if baseline else None,
                              "subset_summary": subset.summary if subset else {},
                              "examples": {r.name: reports[kind].explanations[r.name] for r in records[:12]}}
        suffix = ("_quick" if a.quick else "") + ("" if a.explainer == "default" else f"_{a.explainer}")
        reports[kind].plot().savefig(RESULTS / f"autointerp_features_{kind}{suffix}.png", dpi=110)
        _print(kind, reports[kind], baseline, seconds)
        if subset:
            _print(f"{kind} (first {a.subset})", subset, baseline, seconds)
            subset.plot().savefig(RESULTS / f"autointerp_features_{kind}_subset.png", dpi=110)
            out["kinds"][kind]["subset_scores"] = {s: subset.values(s) for s in subset_scorers}
    out["sae_minus_neurons"] = {s: _difference(reports["sae"].values(s), reports["neurons"].values(s)) for s in scorers}
    for s in subset_scorers:
        out["sae_minus_neurons"][s] = _difference(out["kinds"]["sae"]["subset_scores"][s],
                                                  out["kinds"]["neurons"]["subset_scores"][s])
    for scorer, diff in out["sae_minus_neurons"].items():
        print(f"SAE - neurons, {scorer}: {diff['difference']:+.3f} (95% CI {diff['low']:+.3f} .. {diff['high']:+.3f})")
    tag = ("_quick" if a.quick else "") + ("" if a.explainer == "default" else f"_{a.explainer}")
    path = RESULTS / f"autointerp_features{tag}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


def _records(source, store, n: int, work: Path, model, config):
    """``n`` units drawn at random that fire often enough (more drawn while some are skipped)."""
    from mechscope.autointerp import build_records, load_all

    order = torch.randperm(source.n_units, generator=torch.Generator().manual_seed(0)).tolist()
    kept: list[int] = []
    start = 0
    while len(kept) < n and start < len(order):
        batch = order[start : start + (n - len(kept)) + 8]
        built = build_records(store, source, batch, work, tokenizer=model.tokenizer, config=config, progress=True)
        skipped = dict(built.skipped)
        kept += [u for u in batch if source.unit_name(u) not in skipped][: n - len(kept)]
        start += len(batch)
    return load_all(work, [source.unit_name(u) for u in kept])


def _explain_and_score(records, backend, embedder, scorers, subset_scorers, subset: int, work: Path, explainer: str,
                       with_baseline: bool):
    from mechscope.autointerp import explain_units, score_units

    texts = explain_units(records, backend=backend, out_dir=work, explainer=explainer, progress=True)
    report = score_units(records, texts, scorers=scorers, backend=backend, embedder=embedder, out_dir=work,
                         progress=True)
    baseline = None
    if with_baseline:
        baseline_texts = explain_units(records, backend=None, out_dir=work / "top-tokens", explainer="top-tokens")
        baseline = score_units(records, baseline_texts, scorers=["detection"], backend=backend,
                               out_dir=work / "top-tokens", controls=(), progress=True)
    extra = None
    if subset_scorers:
        extra = score_units(records[:subset], texts, scorers=subset_scorers, backend=backend, embedder=embedder,
                            out_dir=work, progress=True)
    return report, baseline, extra


def _difference(x: list[float], y: list[float], draws: int = 2000) -> dict[str, float]:
    """Mean of x minus mean of y, with a bootstrap 95% interval."""
    a, b = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    boots = torch.stack([a[torch.randint(len(a), (len(a),), generator=g)].mean()
                         - b[torch.randint(len(b), (len(b),), generator=g)].mean() for _ in range(draws)])
    low, high = torch.quantile(boots, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return {"difference": float(a.mean() - b.mean()), "low": low, "high": high}


def _print(kind: str, report, baseline, seconds: float) -> None:
    print(f"== {kind}: {len(report.units)} units in {seconds / 60:.1f} min")
    for scorer, by in report.summary.items():
        cells = ", ".join(f"{c} {v['mean']:.3f}±{v['std']:.3f}" for c, v in by.items() if v.get("n"))
        print(f"   {scorer:10s} {cells}")
    if baseline is not None:
        print(f"   top-tokens baseline detection {baseline.summary['detection']['explanation']['mean']:.3f}")
    for name in report.units[:8]:
        print(f"   {name}: {report.explanations[name]}")


if __name__ == "__main__":
    raise SystemExit(main())
