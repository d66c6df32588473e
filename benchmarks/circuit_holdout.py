"""Circuits of smollm2-135m IOI that hold out of sample: every candidate procedure side by side.

    python benchmarks/circuit_holdout.py            # 32 prompts a side (hours on 2 shared cores: EAP-IG dominates)
    python benchmarks/circuit_holdout.py --quick    # 8 prompts a side, 2 IG steps, the cheap candidates only

Discovery prompts are IOI templates 0-7 with every second name, held-out prompts
templates 8-15 with the other names (``circuit_discovery.tasks``). Every candidate is
chosen on discovery prompts only (some on a validation part of them), then measured:

* ``f`` on the discovery prompts and ``held_out_f`` on the held-out ones, with
  ``|1 - held_out_f|`` beside it (a circuit is faithful when f is close to 1, not large);
* the complement's f on the discovery prompts (near 0 when the circuit holds everything);
* its size, and its cost: wall seconds (an upper bound on a shared machine), CPU seconds, and the
  passes over the prompts it spent, which do not depend on the machine's load.

Candidates: EAP-IG on inputs (signed and |score| rankings, top-k and greedy, at 2% and
5%, and sized to the smallest faithful circuit), with 64 discovery prompts (``--more``);
node circuits (heads and MLPs by integrated gradients, ``mechscope.circuits.nodes``)
ranked by signed or |score|, at the most nodes within 5% and sized faithfully (the
recommended ``discover_circuit`` default), with 3 steps, 16 prompts, or sized on a
validation quarter of the discovery prompts; and node pruning at the circuit
(``node_prune``). The recommended procedure also runs on the ``circuit`` command's own
prompts (template 0, 32 prompts, seed 0), with its held-out f.
Writes ``benchmarks/results/circuit_holdout[_quick].json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import mechscope
from mechscope.circuits.attribution import edge_attribution_patching
from mechscope.circuits.discover import discover_circuit, faithful_edges
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.faithfulness import budget_edges, faithfulness, greedy_edges, top_edges
from mechscope.circuits.node_masks import NodeEvaluator
from mechscope.circuits.node_prune import prune_nodes
from mechscope.circuits.nodes import NodeScores, node_attribution, node_edge_scores, node_edges, top_nodes_within
from mechscope.tasks.ioi import NAMES, ioi

from circuit_discovery import tasks  # noqa: E402  (the same discovery and held-out prompts)

RESULTS = Path(__file__).parent / "results"
FULL = {"n": 32, "steps": 5, "batch_size": 8}
QUICK = {"n": 8, "steps": 2, "batch_size": 8}


class Bench:
    """Discovery and held-out prompts with their evaluators and baselines; measures circuits."""

    def __init__(self, model, n: int):
        self.model = model
        self.discovery, self.held_out = tasks(model, "ioi", n)
        self.graph = None
        self.evaluators = {}
        self.baselines = {}
        for name, task in (("discovery", self.discovery), ("held_out", self.held_out)):
            nodes = NodeEvaluator.of(model, task)
            self.graph = nodes.graph
            full = nodes.mask(self.graph.senders[1:])
            m = nodes.metrics(torch.stack([full, torch.zeros_like(full)]))
            self.evaluators[name] = (nodes, None)
            self.baselines[name] = (float(m[0]), float(m[1]))

    def metric(self, name: str, edges: frozenset) -> float:
        """The metric of ``edges`` on ``name``'s prompts: in the plain model when the circuit is
        node-induced (tests hold this equal to the edge evaluator), else edge by edge."""
        nodes_ev, edges_ev = self.evaluators[name]
        nodes = {e.sender for e in edges} - {self.graph.senders[0]}
        if node_edges(self.graph, nodes) == edges:
            return nodes_ev(nodes)
        if edges_ev is None:
            edges_ev = EdgeEvaluator.of(self.model, nodes_ev.task, graph=self.graph)
            self.evaluators[name] = (nodes_ev, edges_ev)
        return edges_ev(edges)

    def f(self, name: str, edges: frozenset) -> float:
        full, empty = self.baselines[name]
        return faithfulness(self.metric(name, edges), empty, full)

    def measure(self, label: str, edges: frozenset, cost: Cost, passes: dict, **about) -> dict:
        start = time.perf_counter()
        held = self.f("held_out", edges)
        nodes_ev, edges_ev = self.evaluators["discovery"]
        if edges_ev is None:
            edges_ev = EdgeEvaluator.of(self.model, self.discovery, graph=self.graph)
            self.evaluators["discovery"] = (nodes_ev, edges_ev)
        full, empty = self.baselines["discovery"]
        row = {"candidate": label, "n_edges": len(edges), "fraction": round(len(edges) / self.graph.n_edges, 4),
               "f": round(self.f("discovery", edges), 3), "held_out_f": round(held, 3),
               "held_out_error": round(abs(1 - held), 3),
               "complement_f": round(faithfulness(edges_ev.complement(edges), empty, full), 3),
               **cost.to_dict(), "passes": passes, **about,
               "measuring_seconds": round(time.perf_counter() - start, 1)}
        print(json.dumps(row), flush=True)
        return row


class Cost:
    """Wall seconds and this process's CPU seconds of one step. On a machine shared with
    other jobs wall time is an upper bound; CPU seconds are what the step itself used (on
    2 free cores its wall time would be between half of them and all of them)."""

    def __init__(self, wall: float = 0.0, cpu: float = 0.0):
        self.wall, self.cpu = wall, cpu

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.wall + other.wall, self.cpu + other.cpu)

    def to_dict(self) -> dict:
        return {"seconds": round(self.wall, 1), "cpu_seconds": round(self.cpu, 1)}


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, Cost(time.perf_counter() - wall, time.process_time() - cpu)


def eap_ig_rows(bench: Bench, cfg: dict, scored: dict) -> list[dict]:
    """EAP-IG on inputs: signed and |score| rankings at 2% and 5%, and the smallest faithful circuit."""
    graph, rows = bench.graph, []
    for label, (scores, cost, n) in scored.items():
        passes = {"edge_run_forward_backward_per_prompt": cfg["steps"], "plain_forward_per_prompt": 2, "prompts": n}
        for budget in (0.02, 0.05):
            k = budget_edges(graph.n_edges, budget)
            rows.append(bench.measure(f"{label}, signed top {budget:.0%}", top_edges(scores, k, absolute=False),
                                      cost, passes))
        k = budget_edges(graph.n_edges, 0.05)
        rows.append(bench.measure(f"{label}, signed greedy 5%", greedy_edges(graph, scores, k, absolute=False),
                                  cost, passes))
        rows.append(bench.measure(f"{label}, |score| greedy 5%", greedy_edges(graph, scores, k), cost, passes))
        edges, sizing = timed(lambda: faithful_edges(bench.model, bench.discovery, scores, budget=0.05,
                                                     progress=False))
        rows.append(bench.measure(f"{label}, signed, smallest faithful within 5%", edges, cost + sizing,
                                  {**passes, "edge_run_forward_per_prompt (sizing)": "about 8"}))
    return rows


def node_rows(bench: Bench, cfg: dict) -> tuple[list[dict], NodeScores]:
    """Node circuits: rankings, faithful sizing (the recommended default) and its variants;
    and the node scores of the discovery prompts."""
    model, disc, graph, rows = bench.model, bench.discovery, bench.graph, []
    n, steps = len(disc), cfg["steps"]
    scores, cost = timed(lambda: node_attribution(model, disc, steps=steps, progress=False))
    passes = {"plain_forward_backward_per_prompt": steps, "plain_forward_per_prompt": 2, "prompts": n}
    for absolute, name in ((False, "signed"), (True, "|score|")):
        nodes = top_nodes_within(graph, scores, 0.05, absolute=absolute)
        rows.append(bench.measure(f"nodes ({steps} steps), {name}, most nodes within 5%", node_edges(graph, nodes),
                                  cost, passes, n_nodes=len(nodes)))
    edges, sizing = timed(lambda: faithful_edges(model, disc, node_edge_scores(scores).as_dict(), budget=0.05,
                                                 progress=False))
    rows.append(bench.measure(f"nodes ({steps} steps), signed, smallest faithful within 5%", edges, cost + sizing,
                              {**passes, "plain_forward_per_prompt (sizing)": "about 9"}, n_nodes=_n_nodes(edges)))
    found, spent = timed(lambda: discover_circuit(model, disc, progress=False))
    rows.append(bench.measure("discover_circuit(model, task) defaults (recommended)", found.edges, spent,
                              {**passes, "plain_forward_per_prompt (sizing)": "about 9"},
                              n_nodes=_n_nodes(found.edges)))
    # variants: fewer steps, fewer prompts, and sizing on a validation quarter never used for scoring
    fit, validation = disc.subset(slice(0, n * 3 // 4)), disc.subset(slice(n * 3 // 4, n))
    half = disc.subset(slice(0, n // 2))
    variants = (("3 steps", disc, disc, 3), (f"{n // 2} prompts", half, half, steps),
                (f"{n // 2} prompts, 3 steps", half, half, 3),
                (f"scored on {n * 3 // 4}, sized on the other {n - n * 3 // 4}", fit, validation, steps))
    for label, scoring, sizing_task, k in variants:
        def run(scoring=scoring, sizing_task=sizing_task, k=k):
            s = node_attribution(model, scoring, steps=k, progress=False)
            return faithful_edges(model, sizing_task, node_edge_scores(s).as_dict(), budget=0.05, progress=False)
        edges, spent = timed(run)
        rows.append(bench.measure(f"nodes, {label}, smallest faithful within 5%", edges, spent,
                                  {"plain_forward_backward_per_prompt": k, "prompts": len(scoring)},
                                  n_nodes=_n_nodes(edges)))
    pruned, spent = timed(lambda: prune_nodes(NodeEvaluator.of(model, disc), budget=0.05, progress=False))
    rows.append(bench.measure("node pruning at the circuit (objective faithful) to 5%",
                              node_edges(graph, pruned.nodes), spent,
                              {"plain_forward_backward_per_prompt": pruned.passes, "prompts": n},
                              n_nodes=len(pruned.nodes)))
    return rows, scores


def ladder(bench: Bench, scores: NodeScores) -> dict:
    """f of the signed node ranking at growing sizes, on both sides (the picture behind the choice)."""
    ranked = [node for node, _ in scores.top(len(bench.graph.senders), absolute=False) if node.kind != "input"]
    out = {"n_nodes": [], "n_edges": [], "f": [], "held_out_f": []}
    for k in range(5, 71, 5):
        edges = node_edges(bench.graph, ranked[:k])
        for key, value in (("n_nodes", k), ("n_edges", len(edges)), ("f", bench.f("discovery", edges)),
                           ("held_out_f", bench.f("held_out", edges))):
            out[key].append(round(value, 3) if isinstance(value, float) else value)
    return out


def command_prompts(model, n: int) -> dict:
    """The recommended default on the ``circuit`` command's prompts (ioi, template 0, seed 0),
    with held-out f on the held-out templates and names."""
    task = ioi(model, n=n, seed=0)
    found, spent = timed(lambda: discover_circuit(model, task, progress=False))
    own = EdgeEvaluator.of(model, task, graph=found.graph)
    held = EdgeEvaluator.of(model, tasks(model, "ioi", n)[1], graph=found.graph)
    f = faithfulness(own(found.edges), own([]), own(found.graph.edges))
    h = faithfulness(held(found.edges), held([]), held(found.graph.edges))
    return {"task": "ioi (template 0, seed 0)", "n_edges": len(found.edges),
            "fraction": round(len(found.edges) / found.graph.n_edges, 4), "f": round(f, 3),
            "held_out_f": round(h, 3), **spent.to_dict()}


def other_draws(model, n: int, seeds=(2, 3)) -> list[dict]:
    """The recommended default on other draws of the same split (other names, places and
    template choices on each side): is its held-out f near 1 by luck of one draw?"""
    rows = []
    for seed in seeds:
        disc = ioi(model, n=n, seed=2 * seed, mix_templates=True, templates=range(8), names=NAMES[::2])
        held = ioi(model, n=n, seed=2 * seed + 1, mix_templates=True, templates=range(8, 16), names=NAMES[1::2])
        found, spent = timed(lambda disc=disc: discover_circuit(model, disc, progress=False))
        f = {}
        for name, task in (("f", disc), ("held_out_f", held)):
            evaluator = NodeEvaluator.of(model, task)
            full = evaluator.mask(found.graph.senders[1:])
            m = evaluator.metrics(torch.stack([full, torch.zeros_like(full)]))
            nodes = {e.sender for e in found.edges} - {found.graph.senders[0]}
            f[name] = round(faithfulness(evaluator(nodes), float(m[1]), float(m[0])), 3)
        rows.append({"discovery_seed": 2 * seed, "held_out_seed": 2 * seed + 1, "n_edges": len(found.edges),
                     "n_nodes": _n_nodes(found.edges), **f, **spent.to_dict()})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _n_nodes(edges) -> int:
    return len({e.sender for e in edges}) - 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--more", action="store_true", help="also EAP-IG on twice the discovery prompts")
    parser.add_argument("--parts", nargs="+", default=["nodes", "eap-ig"], choices=["nodes", "eap-ig"],
                        help="which families of candidates to run")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    model = mechscope.load_model(args.model)
    bench = Bench(model, cfg["n"])
    with torch.no_grad():
        model(bench.discovery.clean)  # warm up
        _, forward = timed(lambda: model(bench.discovery.clean))
    out = RESULTS / f"circuit_holdout{'_quick' if args.quick else ''}.json"
    report = {"model": args.model, "machine": platform.machine(), "threads": torch.get_num_threads(),
              "config": cfg, "ablation": "resample", "n_edges": bench.graph.n_edges,
              "baselines": bench.baselines, "plain_forward": forward.to_dict(),
              "note": "seconds measured on 2 CPU cores shared with other jobs: upper bounds", "rows": []}

    def save():
        RESULTS.mkdir(exist_ok=True)
        out.write_text(json.dumps(report, indent=1, default=str))

    if "nodes" in args.parts:
        rows, scores = node_rows(bench, cfg)
        report["rows"] += rows
        save()
        report["ladder"] = ladder(bench, scores)
        report["circuit_command_prompts"] = command_prompts(model, cfg["n"])
        save()
        report["other_draws"] = other_draws(model, cfg["n"])
        save()
    if "eap-ig" in args.parts:
        n = cfg["n"]
        scored = {}
        first, cost = timed(lambda: edge_attribution_patching(model, bench.discovery, steps=cfg["steps"],
                                                                 batch_size=cfg["batch_size"], progress=False))
        scored[f"eap-ig ({cfg['steps']} steps, {n} prompts)"] = (first.as_dict(), cost, n)
        if args.more:
            more = tasks(model, "ioi", 2 * n)[0].subset(slice(n, 2 * n))
            second, more_cost = timed(lambda: edge_attribution_patching(
                model, more, steps=cfg["steps"], batch_size=cfg["batch_size"], progress=False))
            both = {e: (v + second.as_dict()[e]) / 2 for e, v in first.as_dict().items()}  # means over prompts
            scored[f"eap-ig ({cfg['steps']} steps, {2 * n} prompts)"] = (both, cost + more_cost, 2 * n)
        report["rows"] += eap_ig_rows(bench, cfg, scored)
        save()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
