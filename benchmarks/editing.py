"""ROME, MEMIT and FT-L against the unedited model on CounterFact-style requests.

    python benchmarks/editing.py                          # smollm2-135m, 100 requests, all methods
    python benchmarks/editing.py --model gemma3-270m
    python benchmarks/editing.py --quick                  # 8 requests, short generations
    python benchmarks/editing.py --methods rome --no-generation
    python benchmarks/editing.py --methods rome --no-generation --start 16 -n 32 --entity-weight 0
    python benchmarks/editing.py --methods rome --tag rome    # ROME alone, beside the other rows

Requests come from the built-in facts the model knows (:func:`mechscope.facts.make_requests`,
seed 0). ROME and FT-L edit one request at a time, MEMIT edits all of them at once. The
edit layer is the traced one (:func:`mechscope.editing.choose_edit_layer`) unless
``--layer`` names it; the key covariance comes from the offline corpus (tokens and time
printed). ROME mixes in sentences naming entities (its default), here only facts about
subjects that no request edits or checks as a neighbour, so that C holds none of them.
Prints the table (ES, PS, NS, S, fluency, consistency, seconds per edit) and writes
``benchmarks/results/editing_<model>[_quick | _<first>-<end>][_w<entity weight>][_<tag>].json``
and ``.png`` (the range when not the first 100 requests, the weight when not ROME's default).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import mechscope
from mechscope.editing import (
    CovarianceConfig,
    EvalConfig,
    EvaluationTable,
    RomeConfig,
    choose_edit_layer,
    entity_sentences,
    evaluate_edits,
    key_covariance,
    reference_texts,
)
from mechscope.editing.memit import MemitConfig, memit_layers
from mechscope.facts import builtin_facts, known_facts, make_requests

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("-n", type=int, default=100, help="requests")
    parser.add_argument("--methods", default="unedited,rome,memit,ft-l")
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--start", type=int, default=0, help="skip this many requests (a held-out slice)")
    parser.add_argument("--entity-weight", type=float, default=RomeConfig().covariance.entity_weight,
                        help="ROME's share of C from entity sentences (0: the corpus alone)")
    parser.add_argument("--no-generation", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tag", default="", help="appended to the output name (a run of some methods only)")
    args = parser.parse_args()
    n = 8 if args.quick else args.n
    config = EvalConfig(generation=not args.no_generation, max_new_tokens=20 if args.quick else 60)
    model = mechscope.load_model(args.model)
    known = known_facts(model, builtin_facts())
    print(known.summary(), flush=True)
    requests = make_requests(known.facts, n=args.start + n, seed=0)[args.start:]
    started = time.perf_counter()
    layer = args.layer if args.layer is not None else choose_edit_layer(model).layer
    layers = memit_layers(model, MemitConfig(layers=None) if args.layer is None else
                          MemitConfig(layers=tuple(range(max(0, layer - 4), layer + 1))))
    print(f"edit layer {layer} (MEMIT layers {list(layers)}), chosen in {time.perf_counter() - started:.0f}s",
          flush=True)
    covariance = {}
    for at in sorted({layer, *layers}):
        stats = key_covariance(model, at, config=CovarianceConfig())
        covariance[at] = {"tokens": stats.n_tokens, "seconds": round(stats.seconds, 1)}
    print(f"key covariance: {covariance}", flush=True)
    references = reference_texts(model, requests, config=config) if config.generation else {}
    stem = f"editing_{args.model}{'_quick' if args.quick else ''}"
    if not args.quick and (args.start, n) != (0, 100):
        stem += f"_{args.start}-{args.start + n}"
    if args.entity_weight != RomeConfig().covariance.entity_weight:
        stem += f"_w{args.entity_weight:g}"
    if args.tag:
        stem += f"_{args.tag}"
    subject_of = {f.prompt: f.subject for f in known.facts}
    involved = {r.requested_rewrite.subject for r in requests} | {
        subject_of[p] for r in requests for p in r.neighborhood_prompts}
    rome_config = RomeConfig(layer=args.layer, covariance=dataclasses.replace(
        RomeConfig().covariance, entity_weight=args.entity_weight, entity_texts=entity_sentences(exclude_subjects=involved)))
    rows = []
    for method in args.methods.split(","):
        t0 = time.perf_counter()
        row = evaluate_edits(model, requests, method=None if method == "unedited" else method, layer=args.layer,
                             config=config, references=references,
                             method_config=rome_config if method == "rome" else None)
        rows.append(row)
        print(f"{method}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.summary().items())
              + f"; edits {row.edit_seconds:.0f}s, all {time.perf_counter() - t0:.0f}s", flush=True)
        # Written after every method, so that a long run stopped part way keeps what it measured.
        table = EvaluationTable(rows=tuple(rows))
        summary = {"model": args.model, "requests": len(requests), "first_request": args.start,
                   "rome_entity_weight": args.entity_weight, "known_facts": len(known.facts),
                   "checked_facts": known.total, "layer": layer, "memit_layers": list(layers),
                   "covariance": covariance, "rome_entity_sentences": len(rome_config.covariance.entity_texts),
                   "eval": vars(config), "table": table.markdown(),
                   "rows": [{k: v for k, v in r.to_dict().items() if k != "cases"} for r in rows],
                   "examples": {r.method: [list(c.generations) for c in r.cases[:3]] for r in rows}}
        (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=1) + "\n")
        table.plot().savefig(RESULTS / f"{stem}.png", dpi=110)
    print(table.markdown())
    print(f"wrote {RESULTS / stem}.json and .png")


if __name__ == "__main__":
    main()
