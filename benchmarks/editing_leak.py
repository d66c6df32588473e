"""Why ROME edits reach other subjects: how much of an edit's gain lands on neighbours' keys.

    python benchmarks/editing_leak.py                          # smollm2-135m, layer 3, 16 requests
    python benchmarks/editing_leak.py --model gemma3-270m --layer 5 -n 8

ROME adds ``u (v* − W k₀)ᵀ / (u·k₀)`` with ``u ∝ C⁻¹ k*``, so a prompt whose key at some
token is k′ receives the fraction ``u·k′ / u·k₀`` of the edit there. For each request
(:func:`mechscope.facts.make_requests`, seed 0, as ``benchmarks/editing.py``) this reads
k* and k₀ as ROME does and k′ at the last subject token of each neighbourhood prompt,
with C from the offline corpus alone and mixed with sentences naming entities at several
weights (the built-in facts, leaving out every subject the requests edit or use as
neighbours). Prints the mean and median gain and the share of neighbours above 0.3;
writes ``benchmarks/results/editing_leak_<model>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

import mechscope
from mechscope.activations.collect import read_points
from mechscope.editing import CovarianceConfig, entity_sentences, key_covariance
from mechscope.editing.context import context_templates, subject_keys, subject_last, with_prefixes
from mechscope.editing.rome import RomeConfig, _regularized
from mechscope.facts import builtin_facts, known_facts, make_requests

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("-n", type=int, default=16, help="requests")
    parser.add_argument("--weights", default="0,0.1,0.3,0.5")
    args = parser.parse_args()
    model = mechscope.load_model(args.model)
    known = known_facts(model, builtin_facts())
    subject_of = {f.prompt: f.subject for f in known.facts}
    requests = make_requests(known.facts, n=args.n, seed=0)
    involved = {r.requested_rewrite.subject for r in requests} | {
        subject_of[p] for r in requests for p in r.neighborhood_prompts}
    held_out = entity_sentences(exclude_subjects=involved)
    templates = context_templates(model)
    point = f"blocks.{args.layer}.mlp.hook_post"
    cases = []
    for r in requests:
        rewrite = r.requested_rewrite
        keys = subject_keys(model, args.layer, [(t, o, rewrite.subject) for t, o in with_prefixes(templates, rewrite.text)])
        neighbours = []
        for prompt in r.neighborhood_prompts:
            (k,) = read_points(model, [point], [prompt], lambda a: a[0])
            neighbours.append(k[subject_last(model, prompt, 0, subject_of[prompt])])
        cases.append((keys, torch.stack(neighbours)))
    rows = []
    for weight in (float(w) for w in args.weights.split(",")):
        covariance = dataclasses.replace(RomeConfig().covariance, entity_weight=weight, entity_texts=held_out)
        stats = key_covariance(model, args.layer, config=covariance)
        solve = _regularized(stats.matrix, RomeConfig().ridge)
        gains = []
        for keys, neighbours in cases:
            u = solve(keys.mean(0).double()).float()
            gains.append((neighbours @ u) / (keys[0] @ u))
        g = torch.cat(gains)
        row = {"entity_weight": weight, "mean_gain": float(g.mean()), "median_gain": float(g.median()),
               "share_above_0.3": float((g.abs() > 0.3).float().mean()), "entity_tokens": stats.entity_tokens}
        rows.append(row)
        print(f"entity weight {weight:g}: neighbour gain mean {row['mean_gain']:.3f}, median {row['median_gain']:.3f}, "
              f"share above 0.3 {row['share_above_0.3']:.2f}", flush=True)
    out = {"model": args.model, "layer": args.layer, "requests": len(requests),
           "neighbour_prompts": sum(len(n) for _, n in cases), "entity_sentences": len(held_out),
           "held_out_subjects": len(involved), "rows": rows}
    path = RESULTS / f"editing_leak_{args.model}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
