"""Every circuit-scoring method against circuits known by construction: ROC AUC of |score|.

    python benchmarks/circuit_ground_truth.py            # 64 prompts, IG 5 steps: ~4 min on 2 cores
    python benchmarks/circuit_ground_truth.py --quick    # 8 prompts, IG 2 steps, 5 settings: under a minute

Toys (:mod:`mechscope.toys`), each with the edges that should matter known beforehand:

* **compiled**: ``compiled_induction_model()``, weights set by hand (sharpness 30: attention
  saturated), and the same at ``sharpness=4``. Mean ablation (over the ``value`` task's
  corrupted prompts): positives are all 7 ``known_edges``. Resample ablation with each
  corruption: positives are ``exercised_edges(corruption)``, all a corruption can reveal.
* **trained**: ``train_induction_model(InductionConfig())``; ``verify_induction`` names the
  previous-token and induction heads from attention patterns, K-composition and head
  ablations (no circuit method), and ``induction_edges`` turns them into positives. Tasks:
  ``compiled_induction_task(model, corruption="key")`` with resample ablation (scored
  against all of ``induction_edges`` and against the part a key corruption changes:
  ``a0.kv<v> ← input``, ``a1.kv<k> ← a0.p``, ``logits ← a1.h``) and the ``value`` task
  with mean ablation.

Methods: EAP, EAP-IG on inputs and on activations, exact single-edge ablation and ACDC
(metric KL, default thresholds 0.01 and 0.001 nats; AUC of its per-edge scores, and
whether the edges it keeps are exactly the positives). ``min|pos|`` and ``max|neg|``
show how an AUC of 1 was won: a positive scored 1e-9 above negatives scored exactly 0 is a
perfect ranking by a margin no real model would keep. Negatives are every other edge.
Writes ``benchmarks/results/circuit_ground_truth[_quick].json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mechscope.circuits.acdc import acdc
from mechscope.circuits.attribution import edge_attribution_patching
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.exact import exact_edge_scores
from mechscope.circuits.graph import CircuitGraph
from mechscope.circuits.ground_truth import induction_edges, roc_auc
from mechscope.tasks.task import answer_logits, logit_diff
from mechscope.toys import (
    CORRUPTIONS,
    InductionConfig,
    compiled_induction_model,
    compiled_induction_task,
    train_induction_model,
    verify_induction,
)

RESULTS = Path(__file__).parent / "results"
GRADIENT_METHODS = ("eap", "eap-ig-inputs", "eap-ig-activations")


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def behaviour(model, task) -> dict:
    """Does the model solve the task: clean accuracy and mean logit differences."""
    with torch.no_grad():
        clean, corrupt = answer_logits(model, task.clean), answer_logits(model, task.corrupt)
    return {"clean_accuracy": float((clean.argmax(-1) == task.answers).float().mean()),
            "clean_logit_diff": float(logit_diff(clean, task.answers, task.wrong).mean()),
            "corrupt_logit_diff": float(logit_diff(corrupt, task.answers, task.wrong).mean())}


def all_scores(model, task, ablation: str, args) -> list[tuple[str, dict, float, frozenset | None]]:
    """(method, {edge: score}, seconds, ACDC's kept edges or None) for every method."""
    out = []
    for method in GRADIENT_METHODS:
        scores, seconds = timed(lambda: edge_attribution_patching(
            model, task, method=method, ablation=ablation, steps=args.steps, progress=False))
        out.append((method, scores.as_dict(), seconds, None))
    # one mask a pass: on CPU, stacking 16 masks a pass was slower per edge (40 s against 64 s)
    scores, seconds = timed(lambda: exact_edge_scores(EdgeEvaluator.of(model, task, ablation=ablation),
                                                      masks_per_pass=1, progress=False))
    out.append(("exact", scores.as_dict(), seconds, None))
    for threshold in args.acdc_thresholds:
        result, seconds = timed(lambda: acdc(model, task, threshold=threshold, metric="kl", ablation=ablation,
                                             progress=False))
        out.append((f"acdc@{threshold:g}", result.scores.as_dict(), seconds, result.circuit_edges))
    return out


def judge(toy: str, setting: str, positives: dict[str, frozenset], scored) -> list[dict]:
    """One row per (positive set, method): AUC, separation, time, ACDC's kept set."""
    rows = []
    for which, edges in positives.items():
        for method, scores, seconds, kept in scored:
            pos = [abs(scores[e]) for e in edges]
            neg = [abs(s) for e, s in scores.items() if e not in edges]
            row = {"toy": toy, "setting": setting, "positives": which, "n_positives": len(edges),
                   "n_edges": len(scores), "method": method, "auc": roc_auc(scores, edges),
                   "min_abs_positive": min(pos), "max_abs_negative": max(neg),
                   "negatives_exactly_zero": sum(v == 0 for v in neg), "seconds": seconds}
            if kept is not None:
                row.update(acdc_kept=len(kept), acdc_equals_positives=kept == edges,
                           acdc_missing=sorted(map(str, edges - kept)), acdc_extra=sorted(map(str, kept - edges)))
            rows.append(row)
    return rows


def run_setting(toy: str, model, ablation: str, corruption: str, positives: dict[str, frozenset], args,
                report: dict) -> list[dict]:
    """Check the model solves the task, score every edge by every method, judge and print."""
    task = compiled_induction_task(model, n=args.n, corruption=corruption)
    solved = report["behaviour"][f"{toy}: {corruption} task"] = behaviour(model, task)
    print(f"# {toy} on the {corruption} task: clean accuracy {solved['clean_accuracy']:.3f}, logit diff "
          f"{solved['clean_logit_diff']:.2f} clean, {solved['corrupt_logit_diff']:.2f} corrupted", flush=True)
    return print_rows(judge(toy, f"{ablation}, {corruption} task", positives, all_scores(model, task, ablation, args)))


def compiled_rows(sharpness: float, corruptions: tuple[str, ...], args, report: dict) -> list[dict]:
    compiled = compiled_induction_model(sharpness=sharpness)
    toy = f"compiled (sharpness {sharpness:g})"
    known = compiled.known_edges
    rows = run_setting(toy, compiled.model, "mean", "value", {f"known ({len(known)})": known}, args, report)
    for corruption in corruptions:
        exercised = compiled.exercised_edges(corruption)
        rows += run_setting(toy, compiled.model, "resample", corruption,
                            {f"exercised by {corruption} ({len(exercised)})": exercised}, args, report)
    return rows


def trained_rows(args, report: dict) -> list[dict]:
    trained = train_induction_model(InductionConfig(), progress=False)
    check = verify_induction(trained.model)
    if not check.verified:
        raise SystemExit(f"the trained toy failed verify_induction: {check.failures}")
    p, heads = check.previous_token_head[1], [h for _, h in check.circuit.induction_heads]
    graph = CircuitGraph.of(trained.model)
    known, kv = induction_edges(graph, p, heads), graph.kv_head
    # what the key corruption changes (as CompiledInduction.exercised_edges("key")): the token the
    # previous-token head moves, the keys it feeds, and the induction heads' outputs
    names = [f"a0.kv{kv(p)}<v> ← input", *(f"a1.kv{kv(h)}<k> ← a0.{p}" for h in heads),
             *(f"logits ← a1.{h}" for h in heads)]
    key_exercised = frozenset(graph.edge(name) for name in names)
    report["trained"] = {"train_seconds": trained.seconds, "final_induction_loss": float(trained.induction_loss[-1]),
                         "previous_token_head": p, "induction_heads": heads, "n_positives": len(known),
                         "key_exercised": sorted(map(str, key_exercised))}
    print(f"# trained toy: {trained.seconds:.0f} s, verified; previous-token head 0.{p}, induction heads "
          f"{', '.join(f'1.{h}' for h in heads)}: {len(known)} of {graph.n_edges} edges")
    all_known = f"induction_edges ({len(known)})"
    rows = run_setting("trained", trained.model, "resample", "key",
                       {all_known: known, f"exercised by key ({len(key_exercised)})": key_exercised}, args, report)
    return rows + run_setting("trained", trained.model, "mean", "value", {all_known: known}, args, report)


HEADER = f"{'toy':<24} {'setting':<24} {'positives':<24} {'method':<19} {'AUC':>6} {'min|pos|':>9} " \
         f"{'max|neg|':>9} {'seconds':>8}  ACDC kept"


def print_rows(rows: list[dict]) -> list[dict]:
    for r in rows:
        kept = ""
        if "acdc_kept" in r:
            kept = f"{r['acdc_kept']} " + ("= positives" if r["acdc_equals_positives"] else
                                           f"(missing {len(r['acdc_missing'])}, extra {len(r['acdc_extra'])})")
        print(f"{r['toy']:<24} {r['setting']:<24} {r['positives']:<24} {r['method']:<19} {r['auc']:6.3f} "
              f"{r['min_abs_positive']:9.2e} {r['max_abs_negative']:9.2e} {r['seconds']:8.2f}  {kept}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=64, help="prompts per task")
    parser.add_argument("--steps", type=int, default=5, help="EAP-IG steps")
    parser.add_argument("--acdc-thresholds", type=float, nargs="+", default=[0.01, 0.001],
                        help="ACDC KL thresholds (nats), one row each")
    parser.add_argument("--quick", action="store_true",
                        help="8 prompts, 2 IG steps, ACDC at 0.01, fewer settings (resample: key only)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one: tiny models, shared cores)")
    parser.add_argument("--out", type=Path,
                        help="JSON file (default: benchmarks/results/circuit_ground_truth[_quick].json)")
    args = parser.parse_args()
    if args.quick:
        args.n, args.steps, args.acdc_thresholds = 8, 2, [0.01]
    torch.set_num_threads(args.threads)
    report = {"n_prompts": args.n, "ig_steps": args.steps, "acdc_metric": "kl", "acdc_thresholds": args.acdc_thresholds,
              "torch_threads": args.threads, "torch": torch.__version__, "behaviour": {}}
    started = time.perf_counter()
    print(HEADER)
    # --quick: resample with the key corruption only, and the soft model under mean ablation only
    rows = compiled_rows(30.0, ("key",) if args.quick else CORRUPTIONS, args, report)
    rows += compiled_rows(4.0, () if args.quick else CORRUPTIONS, args, report)
    rows += trained_rows(args, report)
    report["rows"], report["total_seconds"] = rows, time.perf_counter() - started

    print(f"\n{HEADER}")
    print_rows(rows)
    print(f"\n{len(rows)} rows in {report['total_seconds']:.0f} s")
    out = args.out or RESULTS / f"circuit_ground_truth{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
