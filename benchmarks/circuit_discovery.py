"""Circuits of smollm2-135m for IOI and greater-than: every method's faithfulness curve.

    python benchmarks/circuit_discovery.py            # both tasks, 32 prompts each (about 40 min on 2 cores)
    python benchmarks/circuit_discovery.py --quick    # a smoke test on 4 prompts, IOI only, no IG on activations

For each task, scores every edge of the full graph (~70,000 edges) with EAP, EAP-IG on
inputs (5 steps) and EAP-IG on activations (fewer prompts and steps: it costs
``steps × (2·n_layers + 1)`` backward passes), then evaluates with resample ablation:

* the faithfulness curve at MIB's 10 budgets, taking the top edges by signed score (its
  area is CPR) and by absolute score (its area from 1 is CMD), and circuits grown
  greedily from the logits by absolute score (``selection="greedy"``);
* the smallest greedy circuit (by absolute EAP-IG score, bisecting on the edge count)
  whose faithfulness reaches 0.8 on the discovery prompts;
* that circuit on held-out prompts: IOI templates 8-15 and the other half of the names
  (discovery uses templates 0-7 and every second name), greater-than with another seed
  and template;
* completeness (the faithfulness of the circuit's complement: near 0 when the circuit
  holds everything) and minimality (the exact contribution of the 16 lowest- and 16
  highest-scored edges of the circuit).

ACDC is not run here: one forward pass per edge tried is ~70,000 passes of several
seconds on this graph. Writes ``benchmarks/results/circuit_discovery[_quick].json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

import mechscope
from mechscope.circuits.attribution import edge_attribution_patching
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.exact import edge_contributions
from mechscope.circuits.faithfulness import budget_edges, faithfulness, faithfulness_curve, greedy_edges, top_edges
from mechscope.tasks.greater_than import greater_than
from mechscope.tasks.ioi import NAMES, ioi

RESULTS = Path(__file__).parent / "results"
FULL = {"n": 32, "n_activations": 8, "steps": 5, "steps_activations": 2, "minimality": 16}
QUICK = {"n": 4, "n_activations": 0, "steps": 2, "steps_activations": 0, "minimality": 2}
"""--quick leaves out EAP-IG on activations (61 backward passes per step even on 1 prompt)."""


def tasks(model, name: str, n: int):
    """(discovery, held-out) tasks."""
    if name == "ioi":
        return (ioi(model, n=n, seed=0, mix_templates=True, templates=range(8), names=NAMES[::2]),
                ioi(model, n=n, seed=1, mix_templates=True, templates=range(8, 16), names=NAMES[1::2]))
    held = "The {noun} started in the year {start} and ended in the year {end}"
    return greater_than(model, n=n, seed=0), greater_than(model, n=n, seed=1, template=held)


def smallest_circuit(evaluator, graph, scores, m_full, m_empty, target=0.8):
    """Fewest edges of a greedy circuit reaching ``target`` faithfulness (bisection: f is
    close to monotone in the edge count, not exactly; the answer is measured, not assumed)."""
    low, high = 1, graph.n_edges
    best, f_high = frozenset(graph.edges), 1.0
    while high - low > max(1, graph.n_edges // 2000):
        mid = (low + high) // 2
        edges = greedy_edges(graph, scores, mid)
        f_mid = faithfulness(evaluator(edges), m_empty, m_full)
        if f_mid >= target:
            high, best, f_high = mid, edges, f_mid
        else:
            low = mid
    return best, f_high


def _held_out_signed(model, held_out, evaluator, scores, m_full, m_empty) -> dict:
    """Signed top-k circuits at 1, 2 and 5%: f on the discovery and the held-out prompts,
    and the complement's f."""
    graph = evaluator.graph
    held = EdgeEvaluator.of(model, held_out)
    h_full, h_empty = held(graph.edges), held([])
    rows = {}
    for budget in (0.01, 0.02, 0.05):
        edges = top_edges(scores, budget_edges(graph.n_edges, budget), absolute=False)
        rows[budget] = {"n_edges": len(edges), "f": round(faithfulness(evaluator(edges), m_empty, m_full), 3),
                        "held_out_f": round(faithfulness(held(edges), h_empty, h_full), 3),
                        "complement_f": round(faithfulness(evaluator.complement(edges), m_empty, m_full), 3)}
    return rows


def run_task(model, name: str, cfg: dict) -> dict:
    discovery, held_out = tasks(model, name, cfg["n"])
    evaluator = EdgeEvaluator.of(model, discovery)
    graph = evaluator.graph
    out: dict = {"task": name, "n_prompts": len(discovery), "n_edges": graph.n_edges, "methods": {}}
    m_full, m_empty = evaluator(graph.edges), evaluator([])
    scored = {}
    for method, steps, n in (("eap", 1, cfg["n"]), ("eap-ig-inputs", cfg["steps"], cfg["n"]),
                             ("eap-ig-activations", cfg["steps_activations"], cfg["n_activations"])):
        if not steps or method not in cfg.get("methods", [method]):
            continue
        start = time.perf_counter()
        scores = edge_attribution_patching(model, discovery.subset(slice(0, n)), method=method, steps=steps)
        seconds = time.perf_counter() - start
        scored[method] = scores.as_dict()
        signed = faithfulness_curve(evaluator, graph, scored[method], absolute=False, baselines=(m_full, m_empty))
        if cfg.get("signed_only"):
            out["methods"][method] = {"steps": steps, "n_prompts_scored": n, "seconds": round(seconds, 1),
                                      "budgets": signed.budgets, "f_signed": signed.faithfulness, "cpr": signed.cpr,
                                      "cmd_signed": signed.cmd}
            print(f"{name} {method}: CPR {signed.cpr:.3f} f(signed) {[round(f, 2) for f in signed.faithfulness]}",
                  flush=True)
            out["methods"][method]["held_out"] = _held_out_signed(model, held_out, evaluator, scored[method],
                                                                   m_full, m_empty)
            print(f"{name} {method}: signed circuits held out {out['methods'][method]['held_out']}", flush=True)
            continue
        absolute = faithfulness_curve(evaluator, graph, scored[method], baselines=(m_full, m_empty))
        greedy = faithfulness_curve(evaluator, graph, scored[method], selection="greedy", baselines=(m_full, m_empty))
        out["methods"][method] = {
            "steps": steps, "n_prompts_scored": n, "seconds": round(seconds, 1),
            "budgets": signed.budgets, "f_signed": signed.faithfulness, "f_absolute": absolute.faithfulness,
            "cpr": signed.cpr, "cmd": absolute.cmd, "cpr_absolute": absolute.cpr, "cmd_signed": signed.cmd,
            "smallest_budget_0.8_absolute": absolute.smallest_budget(0.8),
            "f_greedy": greedy.faithfulness, "cpr_greedy": greedy.cpr, "cmd_greedy": greedy.cmd,
            "smallest_budget_0.8_greedy": greedy.smallest_budget(0.8),
        }
        print(f"{name} {method}: {seconds:.0f}s CPR {signed.cpr:.3f} CMD {absolute.cmd:.3f} "
              f"f(abs) {[round(f, 2) for f in absolute.faithfulness]} f(greedy) {[round(f, 2) for f in greedy.faithfulness]}",
              flush=True)
    if cfg.get("signed_only"):
        return out
    out["m_full"], out["m_empty"] = m_full, m_empty
    best = scored["eap-ig-inputs"]
    circuit, f = smallest_circuit(evaluator, graph, best, m_full, m_empty)
    held = EdgeEvaluator.of(model, held_out)
    h_full, h_empty = held(graph.edges), held([])
    complement = evaluator.complement(circuit)
    lowest = sorted(circuit, key=lambda e: abs(best[e]))[: cfg["minimality"]]
    highest = sorted(circuit, key=lambda e: -abs(best[e]))[: cfg["minimality"]]
    contributions = edge_contributions(evaluator, lowest + highest, masks_per_pass=4)
    gap = m_full - m_empty
    out["circuit"] = {
        "method": "eap-ig-inputs", "selection": "greedy", "n_edges": len(circuit), "fraction": len(circuit) / graph.n_edges,
        "faithfulness": f, "held_out_faithfulness": faithfulness(held(circuit), h_empty, h_full),
        "held_out_m_full": h_full, "held_out_m_empty": h_empty,
        "complement_faithfulness": faithfulness(complement, m_empty, m_full),
        "minimality": {"lowest_scored": {e.name: contributions[e] / gap for e in lowest},
                       "highest_scored": {e.name: contributions[e] / gap for e in highest},
                       "note": "each edge's contribution m(C) - m(C without it), over m(N) - m(empty)"},
        "top_edges": [e.name for e in sorted(top_edges(best, 20))],
    }
    print(f"{name}: smallest circuit with f >= 0.8: {len(circuit)} edges ({len(circuit) / graph.n_edges:.2%}), "
          f"f {f:.3f}, held-out f {out['circuit']['held_out_faithfulness']:.3f}, "
          f"complement f {out['circuit']['complement_faithfulness']:.3f}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", nargs="+", default=None, choices=["ioi", "greater-than"])
    parser.add_argument("--methods", nargs="+", default=None, choices=["eap", "eap-ig-inputs", "eap-ig-activations"])
    parser.add_argument("--signed-only", action="store_true",
                        help="only the signed curves (CPR) of the methods, and their 1/2/5%% circuits held out")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    if args.methods:
        cfg = {**cfg, "methods": args.methods}
    cfg = {**cfg, "signed_only": args.signed_only}
    names = args.tasks or (["ioi"] if args.quick else ["ioi", "greater-than"])
    torch.manual_seed(0)
    model = mechscope.load_model(args.model)
    report = {"model": args.model, "machine": platform.machine(), "threads": torch.get_num_threads(),
              "config": cfg, "ablation": "resample", "tasks": []}
    suffix = ("_quick" if args.quick else "") + ("_signed" if args.signed_only else "")
    suffix += "".join(f"_{m}" for m in args.methods or ())
    path = RESULTS / f"circuit_discovery{suffix}.json"
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        report["tasks"].append(run_task(model, name, cfg))
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        path.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
