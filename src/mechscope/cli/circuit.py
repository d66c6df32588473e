"""``mechscope circuit MODEL --task ioi --method eap-ig``: find a circuit, and measure how much
of the behaviour it carries.

    mechscope circuit smollm2-135m --task ioi --method eap-ig              # top 5% of edges by EAP-IG
    mechscope circuit smollm2-135m --task ioi --method eap --budget 0.02 --ablation mean
    mechscope circuit tiny-model/ --task pairs.jsonl --method acdc --threshold 0.01

Every edge is scored by the method, the top ``--budget`` fraction (by |score|) is the
circuit (ACDC instead keeps what its ``--threshold`` did not prune), and its faithfulness
f(C) and the faithfulness of its complement, f(N∖C), are measured with every other edge
ablated. A faithful circuit has f(C) near 1; a complete one leaves f(N∖C) near 0. The
faithfulness curve over :data:`~mechscope.circuits.BUDGETS` gives CPR and CMD.

Writes, under ``--out``, with ``STEM = <method>-<task>-<model>``:
``circuit-STEM.json`` (``Circuit.load`` reads it), ``circuit-STEM.svg`` and
``faithfulness-STEM.json`` (the curve by |score|, whose area from 1 is CMD, the curve by
signed score, whose area is CPR, as in MIB; plus the circuit's own f and its complement's).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import DEFAULT_OUT, clean_errors, out, safe_stem
from mechscope.errors import InputError

METHODS = {"eap": "eap", "eap-ig": "eap-ig-inputs", "eap-ig-activations": "eap-ig-activations",
           "exact": "exact", "acdc": "acdc"}
"""``--method`` values, and the method name each gives the library (EAP-IG means on inputs)."""
INTEGRATED = ("eap-ig", "eap-ig-activations")
"""Methods that take ``--steps``."""
DEFAULT_BUDGET, DEFAULT_STEPS, DEFAULT_THRESHOLD = 0.05, 5, 0.01
FAITHFUL = 0.8
"""The faithfulness the summary asks the smallest budget for."""


def register(app: typer.Typer) -> None:
    """Add ``circuit`` to ``app``."""
    app.command("circuit")(circuit)


@clean_errors
def circuit(
    model: str = typer.Argument(..., help="Bundled name, local directory, .gguf file or hub id."),
    task: str = typer.Option("ioi", "--task", help="Built-in task (ioi, greater-than, factual, induction, sva) or a .jsonl/.csv file."),
    method: str = typer.Option("eap-ig", "--method", help=f"How edges are scored: {', '.join(METHODS)}."),
    budget: float | None = typer.Option(
        None, "--budget", help=f"Fraction of the edges kept, in (0, 1] (default {DEFAULT_BUDGET}; not acdc)."),
    ablation: str = typer.Option("resample", "--ablation", help="What a removed edge carries: resample, mean or zero."),
    steps: int | None = typer.Option(
        None, "--steps", help=f"Integration steps of eap-ig and eap-ig-activations (default {DEFAULT_STEPS})."),
    threshold: float | None = typer.Option(
        None, "--threshold", help=f"acdc: prune an edge whose removal raises the KL by less (default {DEFAULT_THRESHOLD})."),
    n: int = typer.Option(32, "-n", help="Number of prompts (built-in tasks)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the task's prompts (built-in tasks)."),
    metric: str | None = typer.Option(
        None, "--metric", help="logit_diff, prob_diff, kl or normalized (default: the task's own, e.g. logit_diff)."),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Directory for the circuit (JSON, SVG) and faithfulness (JSON)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Circuit discovery (EAP, EAP-IG, exact, ACDC) on a task, with faithfulness and completeness."""
    from mechscope.circuits import faithfulness, faithfulness_curve
    from mechscope.circuits.evaluate import EdgeEvaluator
    from mechscope.models import load_model
    from mechscope.tasks.registry import TASKS, make_task

    # Cheap checks first, so a typo never waits for a model to load.
    _check_options(method, budget, ablation, steps, threshold, n, metric, out_dir)
    hooked = load_model(model)
    options = {"n": n, "seed": seed} if task in TASKS else {}
    chosen = make_task(task, hooked, **options)
    if metric is not None:
        chosen = chosen.with_metric(metric)
    # None means "not given", so that an option another method takes is refused above, not ignored.
    settings = {"budget": DEFAULT_BUDGET if budget is None else budget,
                "steps": DEFAULT_STEPS if steps is None else steps,
                "threshold": DEFAULT_THRESHOLD if threshold is None else threshold}
    evaluator = EdgeEvaluator.of(hooked, chosen, ablation=ablation)
    found = _discover(hooked, chosen, evaluator, method, **settings, progress=progress)
    # As MIB: CMD from the curve of circuits ranked by |score|, CPR from circuits ranked by signed score.
    curve = faithfulness_curve(evaluator, found.graph, found.scores, progress=progress)
    # Scores are the metric's change on ablation: for KL (lower is better) the signed ranking is of −score.
    ranked = {e: -v for e, v in found.scores.items()} if chosen.metric == "kl" else found.scores
    signed = faithfulness_curve(evaluator, found.graph, ranked, absolute=False, progress=progress,
                                baselines=(curve.m_full, curve.m_empty))
    m_circuit, m_complement = evaluator(found.edges), evaluator.complement(found.edges)
    own = {"n_edges": len(found.edges), "fraction": len(found.edges) / found.graph.n_edges,
           "metric": m_circuit, "faithfulness": faithfulness(m_circuit, curve.m_empty, curve.m_full),
           "complement_metric": m_complement,
           "complement_faithfulness": faithfulness(m_complement, curve.m_empty, curve.m_full)}
    chose = (f"edges ACDC kept at KL threshold {settings['threshold']:g}" if method == "acdc"
             else f"top {settings['budget']:g} of the edges by |score|")
    _print_summary(model, chosen, f"{method} circuit ({chose}), {ablation} ablation", found, curve, signed, own)
    about = {"method": method, "ablation": ablation, "task": chosen.name, "task_metric": chosen.metric,
             "model": hooked.name, "budget": None if method == "acdc" else settings["budget"],
             "threshold": settings["threshold"] if method == "acdc" else None,
             "steps": settings["steps"] if method in INTEGRATED else None}
    _write(found, curve, {**about, "circuit": own, "cpr": signed.cpr, "signed_curve": signed.to_dict()}, out_dir,
           f"{safe_stem(method)}-{safe_stem(chosen.name)}-{safe_stem(model)}")


def _check_options(method, budget, ablation, steps, threshold, n, metric, out_dir: Path) -> None:
    """Refuse bad options before anything is loaded."""
    from mechscope.ablations import ABLATIONS
    from mechscope.tasks.task import METRICS

    if method not in METHODS:
        raise InputError(f"unknown --method {method!r}; expected one of {', '.join(METHODS)}")
    if budget is not None and not 0 < budget <= 1:
        raise InputError(f"--budget is a fraction of the edges in (0, 1]; received {budget}. Try --budget 0.05")
    if budget is not None and method == "acdc":
        raise InputError("--budget does not apply to acdc, which keeps the edges its --threshold leaves; drop --budget")
    if steps is not None and steps < 1:
        raise InputError(f"--steps must be at least 1; received {steps}")
    if steps is not None and method not in INTEGRATED:
        raise InputError(f"--steps applies to {' and '.join(INTEGRATED)}; {method} has no integration steps (drop --steps)")
    if threshold is not None and not threshold >= 0:
        raise InputError(f"--threshold must be a number >= 0; received {threshold}")
    if threshold is not None and method != "acdc":
        raise InputError(f"--threshold applies to acdc; {method} keeps the top --budget of the edges (drop --threshold)")
    if ablation not in ABLATIONS:
        raise InputError(f"unknown --ablation {ablation!r}; expected one of {', '.join(ABLATIONS)}")
    if n < 1:
        raise InputError(f"-n must be at least 1; received {n}")
    if metric is not None and metric not in METRICS:
        raise InputError(f"unknown --metric {metric!r}; expected one of {', '.join(METRICS)}")
    if method == "eap" and metric == "kl":
        # KL from the clean run is smallest at the full model, so its gradient there, EAP's only one, is zero.
        raise InputError("--method eap scores every edge 0 under --metric kl (its gradient at the full model is zero); "
                         "use eap-ig or exact, or another --metric")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file; give a directory (it is created if missing)")


def _discover(model, task, evaluator, method: str, *, budget: float, steps: int, threshold: float, progress: bool):
    """The circuit ``method`` finds, with every edge's score (``Circuit.scores``)."""
    from mechscope.circuits import Circuit
    from mechscope.circuits.acdc import acdc
    from mechscope.circuits.attribution import edge_attribution_patching
    from mechscope.circuits.exact import exact_edge_scores

    if method == "acdc":
        result = acdc(model, task, threshold=threshold, metric="kl", ablation=evaluator.ablation, progress=progress)
        return Circuit(graph=result.scores.graph, edges=result.circuit_edges, scores=result.scores.as_dict(),
                       method="acdc", model_name=model.name)
    if method == "exact":
        scores = exact_edge_scores(evaluator, progress=progress)
    else:
        scores = edge_attribution_patching(model, task, method=METHODS[method], ablation=evaluator.ablation,
                                           steps=steps, progress=progress)
    return Circuit.from_scores(scores.graph, scores.as_dict(), budget=budget, method=method, model_name=model.name)


def _print_summary(model: str, task, how: str, found, curve, signed, own: dict) -> None:
    out.print(f"{escape(task.name)} on {escape(model)}: {how}; metric {task.metric}: "
              f"full model {curve.m_full:.3f}, empty circuit {curve.m_empty:.3f}", soft_wrap=True)
    reaching = curve.smallest_budget(FAITHFUL)
    if reaching is None:
        smallest = f"none up to {curve.budgets[-1]:g}"
    else:
        smallest = f"{reaching:g} ({curve.n_edges[curve.budgets.index(reaching)]} edges)"
    table = Table("measure", "value")
    for name, value in (
        ("edges kept", f"{own['n_edges']} / {found.graph.n_edges} ({own['fraction']:.1%})"),
        ("faithfulness f(C)", f"{own['faithfulness']:.3f} (metric {own['metric']:.3f})"),
        ("complement f(N∖C)", f"{own['complement_faithfulness']:.3f} (metric {own['complement_metric']:.3f})"),
        ("CPR (area under f, signed ranking; higher is better)", f"{signed.cpr:.3f}"),
        ("CMD (area under |1 − f|, |score| ranking; lower is better)", f"{curve.cmd:.3f}"),
        (f"smallest budget with f ≥ {FAITHFUL}", smallest),
    ):
        table.add_row(name, value)
    out.print(table)


def _write(found, curve, extra: dict, out_dir: Path, stem: str) -> list[Path]:
    """``circuit-STEM.json``, ``circuit-STEM.svg`` and ``faithfulness-STEM.json`` (the curve
    with ``extra``: the run's options and the circuit's own faithfulness)."""
    from mechscope.results import to_jsonable, write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    svg = out_dir / f"circuit-{stem}.svg"
    found.to_svg(svg)
    paths = [found.save(out_dir / f"circuit-{stem}.json"), svg,
             write_json(out_dir / f"faithfulness-{stem}.json", {**curve.to_dict(), **to_jsonable(extra)})]
    for path in paths:
        out.print(f"wrote {escape(str(path))}", soft_wrap=True)
    return paths
