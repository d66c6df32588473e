"""``mechscope circuit MODEL --task ioi``: find a circuit, and measure how much of the
behaviour it carries.

    mechscope circuit smollm2-135m --task ioi                              # the smallest faithful node circuit
    mechscope circuit smollm2-135m --task ioi --method eap-ig              # top 5% of edges by EAP-IG
    mechscope circuit smollm2-135m --task ioi --method eap --budget 0.02 --ablation mean
    mechscope circuit tiny-model/ --task pairs.jsonl --method acdc --threshold 0.01

Every edge is scored by the method, the top ``--budget`` fraction (by |score|) is the
circuit (ACDC instead keeps what its ``--threshold`` did not prune; ``nodes``, the default,
scores heads and MLPs and keeps the smallest circuit their ranking induces, within
``--budget``, whose f is within 0.1 of 1: :func:`~mechscope.circuits.discover.discover_circuit`),
and its faithfulness
f(C) and the faithfulness of its complement, f(N∖C), are measured with every other edge
ablated. A faithful circuit has f(C) near 1; a complete one leaves f(N∖C) near 0. The
faithfulness curve over :data:`~mechscope.circuits.BUDGETS` gives CPR and CMD.

Writes, under ``--out``, with ``STEM = <method>-<task>-<model>-<hash>`` (the hash covers
every option that changes the result; each JSON lists them under ``options``):
``circuit-STEM.json`` (``Circuit.load`` reads it), ``circuit-STEM.svg`` and
``faithfulness-STEM.json`` (the curve by |score|, whose area from 1 is CMD, the curve by
signed score, whose area is CPR, as in MIB; plus the circuit's own f and its complement's).
EAP and EAP-IG keep each finished batch of prompts in the results store: after Ctrl-C,
``--resume`` continues from them.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import (
    check_at_least,
    check_out_dir,
    check_store,
    clean_errors,
    kept_parts,
    metric_option,
    model_argument,
    n_option,
    no_cache_option,
    no_store_option,
    out,
    out_option,
    output_stem,
    recorded,
    resume_option,
    seed_option,
    store_option,
    task_option,
)
from mechscope.errors import InputError

CIRCUIT_METHOD_NAMES = {"nodes": "nodes", "eap": "eap", "eap-ig": "eap-ig-inputs",
                        "eap-ig-activations": "eap-ig-activations", "exact": "exact", "acdc": "acdc"}
"""``--method`` values, and the method name each gives the library (EAP-IG means on inputs)."""
INTEGRATED = ("nodes", "eap-ig", "eap-ig-activations")
"""Methods that take ``--steps``."""
DEFAULT_BUDGET, DEFAULT_STEPS, DEFAULT_THRESHOLD = 0.05, 5, 0.01
FAITHFUL = 0.8
"""The faithfulness the summary asks the smallest budget for."""


def register(app: typer.Typer) -> None:
    """Add ``circuit`` to ``app``."""
    app.command("circuit")(circuit)


@clean_errors
def circuit(
    model: str = model_argument(),
    task: str = task_option(),
    method: str = typer.Option("nodes", "--method", help=f"How edges are scored: {', '.join(CIRCUIT_METHOD_NAMES)}. "
                               "nodes (the default): heads and MLPs by integrated gradients, and the circuit is the "
                               "smallest their ranking induces, within --budget, whose f is within 0.1 of 1; the "
                               "others keep the top --budget of the edges."),
    budget: float | None = typer.Option(
        None, "--budget", help=f"Fraction of the edges kept, in (0, 1] (default {DEFAULT_BUDGET}; not acdc)."),
    ablation: str = typer.Option("resample", "--ablation", help="What a removed edge carries: resample, mean or zero."),
    steps: int | None = typer.Option(
        None, "--steps", help=f"Integration steps of eap-ig and eap-ig-activations (default {DEFAULT_STEPS})."),
    threshold: float | None = typer.Option(
        None, "--threshold", help=f"acdc: prune an edge whose removal raises the KL by less (default {DEFAULT_THRESHOLD})."),
    n: int | None = n_option(),
    seed: int | None = seed_option(),
    metric: str | None = metric_option(),
    out_dir: Path = out_option("the circuit (JSON, SVG) and its faithfulness (JSON)"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    resume: bool = resume_option(),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Circuit discovery (nodes, EAP, EAP-IG, exact, ACDC) on a task, with faithfulness and completeness."""
    from mechscope.circuits import faithfulness, faithfulness_curve
    from mechscope.circuits.discover import oriented
    from mechscope.circuits.evaluate import EdgeEvaluator
    from mechscope.models import load_model
    from mechscope.tasks import check_task, resolve_task

    # Cheap checks first, so a typo never waits for a model to load.
    _check_options(method, budget, ablation, steps, threshold, n, metric, out_dir)
    check_task(task, n=n, seed=seed, metric=metric)
    check_store(store, no_store=no_store, no_cache=no_cache, resume=resume)
    hooked = load_model(model)
    chosen = resolve_task(task, hooked, n=n, seed=seed, metric=metric)
    # None means "not given", so that an option another method takes is refused above, not ignored.
    settings = {"budget": DEFAULT_BUDGET if budget is None else budget,
                "steps": DEFAULT_STEPS if steps is None else steps,
                "threshold": DEFAULT_THRESHOLD if threshold is None else threshold}
    about = {"model": model, "task": task, "n": n, "seed": seed, "method": method, "ablation": ablation,
             "task_metric": chosen.metric, "budget": None if method == "acdc" else settings["budget"],
             "threshold": settings["threshold"] if method == "acdc" else None,
             "steps": settings["steps"] if method in INTEGRATED else None}
    with recorded(store, no_store, command="circuit", model=hooked, task=chosen, options=about,
                  no_cache=no_cache, resumable=True) as run:
        evaluator = EdgeEvaluator.of(hooked, chosen, ablation=ablation)
        keep = kept_parts(run, "edge scores", resume=resume)
        found = run.stage("circuit", lambda: _discover(hooked, chosen, evaluator, method, **settings,
                                                       checkpoint=keep, progress=progress))
        # As MIB: CMD from the curve of circuits ranked by |score|, CPR from circuits ranked by signed score.
        curve = run.stage("faithfulness", lambda: faithfulness_curve(evaluator, found.graph, found.scores,
                                                                     progress=progress))
        # The signed ranking takes the edge whose ablation hurts most first (the library's one sign rule).
        ranked = oriented(found.scores, chosen, method)
        signed = run.stage("signed faithfulness", lambda: faithfulness_curve(
            evaluator, found.graph, ranked, absolute=False, progress=progress, baselines=(curve.m_full, curve.m_empty)))
        m_circuit, m_complement = evaluator(found.edges), evaluator.complement(found.edges)
        own = {"n_edges": len(found.edges), "fraction": len(found.edges) / found.graph.n_edges,
               "metric": m_circuit, "faithfulness": faithfulness(m_circuit, curve.m_empty, curve.m_full),
               "complement_metric": m_complement,
               "complement_faithfulness": faithfulness(m_complement, curve.m_empty, curve.m_full)}
        run.summary.update(own=own, cpr=signed.cpr, cmd=curve.cmd)
        chose = (f"edges ACDC kept at KL threshold {settings['threshold']:g}" if method == "acdc"
                 else f"the smallest with |1 − f| ≤ 0.1 within {settings['budget']:g} of the edges" if method == "nodes"
                 else f"top {settings['budget']:g} of the edges by |score|")
        _print_summary(model, chosen, f"{method} circuit ({chose}), {ablation} ablation", found, curve, signed, own)
        _write(found, curve, {**about, "circuit": own, "cpr": signed.cpr, "signed_curve": signed.to_dict()}, out_dir,
               output_stem(method, chosen.name, model, options=about), run, options=about)


def _check_options(method, budget, ablation, steps, threshold, n, metric, out_dir: Path) -> None:
    """Refuse bad options before anything is loaded."""
    from mechscope.ablations import ABLATIONS
    from mechscope.tasks.task import METRICS

    if method not in CIRCUIT_METHOD_NAMES:
        raise InputError(f"unknown --method {method!r}; expected one of {', '.join(CIRCUIT_METHOD_NAMES)}")
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
    check_at_least(("-n", n, 1))
    if metric is not None and metric not in METRICS:
        raise InputError(f"unknown --metric {metric!r}; expected one of {', '.join(METRICS)}")
    if method == "eap" and metric == "kl":
        # KL from the clean run is smallest at the full model, so its gradient there, EAP's only one, is zero.
        raise InputError("--method eap scores every edge 0 under --metric kl (its gradient at the full model is zero); "
                         "use eap-ig or exact, or another --metric")
    check_out_dir(out_dir)


def _discover(model, task, evaluator, method: str, *, budget: float, steps: int, threshold: float, checkpoint,
              progress: bool):
    """The circuit ``method`` finds, with every edge's score (``Circuit.scores``)."""
    from mechscope.circuits import Circuit
    from mechscope.circuits.acdc import acdc
    from mechscope.circuits.attribution import edge_attribution_patching
    from mechscope.circuits.exact import exact_edge_scores

    if method == "acdc":
        result = acdc(model, task, threshold=threshold, metric="kl", ablation=evaluator.ablation, progress=progress)
        return Circuit(graph=result.scores.graph, edges=result.circuit_edges, scores=result.scores.as_dict(),
                       method="acdc", model_name=model.name)
    if method == "nodes":
        from mechscope.circuits.discover import discover_circuit

        return discover_circuit(model, task, method="nodes", budget=budget, ablation=evaluator.ablation, steps=steps,
                                selection="faithful", progress=progress)
    if method == "exact":
        scores = exact_edge_scores(evaluator, progress=progress)
    else:
        scores = edge_attribution_patching(model, task, method=CIRCUIT_METHOD_NAMES[method],
                                           ablation=evaluator.ablation, steps=steps, checkpoint=checkpoint,
                                           progress=progress)
    return Circuit.from_scores(scores.graph, scores.as_dict(), budget=budget, method=method, model_name=model.name)


def _print_summary(model: str, task, how: str, found, curve, signed, own: dict) -> None:
    out.print(f"{escape(task.name)} on {escape(model)}: {how}; metric {task.metric}: "
              f"full model {curve.m_full:.3f}, empty circuit {curve.m_empty:.3f}", soft_wrap=True)
    reaching = curve.smallest_budget(FAITHFUL)
    if reaching is None:
        smallest = f"none up to {curve.budgets[-1]:g}"
    else:
        smallest = f"{reaching:g} ({curve.n_edges[curve.budgets.index(reaching)]} edges)"
    f, f_out = own["faithfulness"], own["complement_faithfulness"]
    # Past f = 1 a circuit leaves out edges that work against the answer: more area is then not better.
    overshoot = max(signed.faithfulness) > 1
    cpr = "CPR (area under f, signed ranking" + ("; f passes 1, so higher is not better)" if overshoot
                                                 else "; higher is better)")
    table = Table("measure", "value")
    for name, value in (
        ("edges kept", f"{own['n_edges']} / {found.graph.n_edges} ({own['fraction']:.1%})"),
        ("faithfulness f(C)", f"{f:.3f}, |1 − f| {abs(1 - f):.3f} (metric {own['metric']:.3f})"),
        ("complement f(N∖C)", f"{f_out:.3f} (metric {own['complement_metric']:.3f})"),
        (cpr, f"{signed.cpr:.3f}" + (f" (largest f {max(signed.faithfulness):.2f})" if overshoot else "")),
        ("CMD (area under |1 − f|, |score| ranking; lower is better)", f"{curve.cmd:.3f}"),
        (f"smallest budget with f ≥ {FAITHFUL}", smallest),
    ):
        table.add_row(name, value)
    out.print(table)


def _write(found, curve, extra: dict, out_dir: Path, stem: str, recorder=None, *, options: dict) -> list[Path]:
    """``circuit-STEM.json``, ``circuit-STEM.svg`` and ``faithfulness-STEM.json`` (the curve
    with ``extra``: the run's options and the circuit's own faithfulness); each lists the
    ``options`` the file name's hash covers."""
    from mechscope.results import to_jsonable, write_json

    svg = out_dir / f"circuit-{stem}.svg"
    found.to_svg(svg)
    paths = [write_json(out_dir / f"circuit-{stem}.json", {**found.to_dict(), "options": options}), svg,
             write_json(out_dir / f"faithfulness-{stem}.json",
                        {**curve.to_dict(), **to_jsonable(extra), "options": options})]
    for path in paths:
        if recorder is not None:
            recorder.attach(path.name, path.read_bytes())
        out.print(f"wrote {escape(str(path))}", soft_wrap=True)
    return paths
