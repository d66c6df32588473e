"""How each stage is computed: which library call, on which prompts, with which options.

Every function returns the stage's stored result (:mod:`~mechscope.investigate.stages`).
Claims come from discovery prompts; held-out prompts only check them.
"""

from __future__ import annotations

from mechscope.circuits.check import check_circuit
from mechscope.circuits.circuit import Circuit
from mechscope.circuits.discover import CIRCUIT_METHODS, faithful_edges, oriented
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.faithfulness import faithfulness_curve
from mechscope.circuits.view import node_view
from mechscope.heads.labels import head_labels
from mechscope.heads.movers import mover_scores
from mechscope.heads.roles import head_roles
from mechscope.investigate.options import InvestigateOptions
from mechscope.investigate.stages import Behaviour, CircuitStage, Features, SAEFeatures, SplitSummary, Where, Who
from mechscope.lens.dla import direct_logit_attribution
from mechscope.lens.logit_lens import logit_lens
from mechscope.patching.activation import activation_patching
from mechscope.patching.agreement import estimate_agreement
from mechscope.patching.attribution import attribution_patching
from mechscope.tasks.evaluate import evaluate_task
from mechscope.tasks.split import TaskSplit


def behaviour(model, split: TaskSplit, opts: InvestigateOptions) -> Behaviour:
    """Clean accuracy and logit differences on both sides; the refusal rule of stage 1."""
    discovery = evaluate_task(model, split.discovery.with_metric("logit_diff"))
    heldout = evaluate_task(model, split.heldout.with_metric("logit_diff"))
    gap = discovery.clean_metric - discovery.corrupt_metric
    refusal = ""
    if discovery.clean_accuracy < opts.min_accuracy:
        refusal = (f"{model.name} does not do {split.discovery.name}: the answer is the top token on "
                   f"{discovery.clean_accuracy:.0%} of {discovery.n} prompts (the floor is {opts.min_accuracy:.0%}); "
                   f"logit difference clean {discovery.clean_metric:.2f}, corrupted {discovery.corrupt_metric:.2f}")
    elif gap < opts.min_gap:
        refusal = (f"the corruption barely changes {model.name}'s answer on {split.discovery.name}: logit difference "
                   f"clean {discovery.clean_metric:.2f}, corrupted {discovery.corrupt_metric:.2f} (gap {gap:.2f}, "
                   f"the floor is {opts.min_gap:.2f}); there is no behaviour to localize")
    return Behaviour(discovery=discovery, heldout=heldout, min_accuracy=opts.min_accuracy, min_gap=opts.min_gap,
                     refusal=refusal)


def split_summary(split: TaskSplit, examples: int = 3) -> SplitSummary:
    pairs = lambda task: tuple(zip(task.prompts[:examples], task.corrupt_prompts[:examples]))  # noqa: E731
    return SplitSummary(how=split.how, n_discovery=len(split.discovery), n_heldout=len(split.heldout),
                        n_aligned=len(split.aligned), discovery_examples=pairs(split.discovery),
                        heldout_examples=pairs(split.heldout),
                        shared_prompts=len(set(split.discovery.prompts) & set(split.heldout.prompts)))


def where(model, split: TaskSplit, opts: InvestigateOptions, *, progress: bool = True) -> Where:
    """Lens, DLA, residual patching by layer × position, AtP* over heads confirmed exactly."""
    aligned = split.aligned.subset(slice(0, opts.patch_prompts))
    first = aligned.subset(slice(0, 1))
    lens = logit_lens(model, first.clean, answer=int(first.answers[0]))
    dla = direct_logit_attribution(model, split.discovery)
    resid = activation_patching(model, aligned, what="resid", progress=progress)
    atp = attribution_patching(model, split.discovery, what="heads", qk_fix=True, grad_drop=opts.grad_drop,
                               progress=progress)
    layers: list[int] = []
    for cell, _ in atp.top(atp.values.numel()):
        if cell["layer"] not in layers:
            layers.append(cell["layer"])
        if len(layers) == opts.exact_layers:
            break
    exact = activation_patching(model, split.discovery, what="heads", layers=sorted(layers), progress=progress)
    top = exact.top(opts.top_heads)
    return Where(lens=lens, dla=dla, resid=resid, atp=atp, exact=exact, agreement=estimate_agreement(atp, exact),
                 top_heads=tuple(f"L{c['layer']}H{c['head']}" for c, _ in top),
                 head_effects={f"L{c['layer']}H{c['head']}": effect for c, effect in top})


def who(model, split: TaskSplit, found: Where, opts: InvestigateOptions) -> Who:
    """Role scores of every head, mover scores on the task, and the clear roles of the top heads."""
    roles = head_roles(model, n_seqs=opts.role_seqs, seq_len=min(opts.role_seq_len, model.cfg.n_ctx // 2 - 1),
                       seed=opts.seed)
    movers = mover_scores(model, split.discovery)
    return Who(roles=roles, movers=movers, labels=head_labels(roles, movers, found.top_heads))


def circuit(model, split: TaskSplit, opts: InvestigateOptions, roles: Who | None = None, *,
            progress: bool = True) -> CircuitStage:
    """Edge scores, the faithfulness curve, the smallest faithful circuit within the
    budget (:func:`~mechscope.circuits.discover.faithful_edges`), and its checks on
    held-out prompts."""
    task = split.discovery if opts.circuit_prompts is None else split.discovery.subset(slice(0, opts.circuit_prompts))
    scores = CIRCUIT_METHODS[opts.circuit_method](model, task, ablation=opts.ablation, steps=opts.ig_steps,
                                                  threshold=None, progress=progress)
    ranked = oriented(scores.as_dict(), split.discovery, opts.circuit_method)  # most negative: matters most
    evaluator = EdgeEvaluator.of(model, split.discovery, ablation=opts.ablation)
    graph = evaluator.graph
    baselines = (evaluator(frozenset(graph.edges)), evaluator(frozenset()))
    curve = faithfulness_curve(evaluator, graph, ranked, absolute=False, baselines=baselines, progress=progress)
    edges = faithful_edges(model, split.discovery, ranked, budget=opts.max_budget, ablation=opts.ablation,
                           tolerance=opts.tolerance, progress=progress, evaluator=evaluator)
    found = Circuit(graph=graph, edges=edges, scores={e: ranked[e] for e in edges}, method=opts.circuit_method,
                    model_name=model.name)
    check = check_circuit(model, edges, discovery=split.discovery, heldout=split.heldout, ablation=opts.ablation,
                          scores=ranked, minimality=opts.minimality_edges, evaluator=evaluator)
    labels = {} if roles is None else {head: ", ".join(r for r, _ in found_roles[:2])
                                       for head, found_roles in roles.labels.items() if found_roles}
    view = node_view(found, roles=labels, title=f"{model.name} · {split.discovery.name} circuit "
                                                f"({opts.circuit_method}, {opts.ablation} ablation)")
    return CircuitStage(scores=scores, curve=curve, circuit=found, tolerance=opts.tolerance,
                        reached=abs(1 - check.f_discovery) <= opts.tolerance, selection="faithful", check=check,
                        view=view)


def features(model, split: TaskSplit, opts: InvestigateOptions, *, progress: bool = True) -> Features:
    """Feature attribution of each SAE at the answer, and dashboards of its top features."""
    from mechscope.corpus import default_texts
    from mechscope.sae import feature_attribution, feature_dashboard, load_sae

    found = []
    for path in opts.sae:
        sae = load_sae(path)
        attribution = feature_attribution(model, sae, split.discovery)
        top = [index for index, _ in attribution.top(opts.features_top)]
        boards = feature_dashboard(model, sae, default_texts(), features=top, n_tokens=4096, progress=progress)
        found.append(SAEFeatures(path=str(path), attribution=attribution, dashboards=boards))
    return Features(saes=tuple(found))
