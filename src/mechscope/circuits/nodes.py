"""Node-level circuits: score heads and MLPs, keep the best, take every edge among them.

::

    scores = node_attribution(model, task, steps=5)          # one score per sender node
    scores.top(10)                                            # [(Node, score), …] by |score|
    edges = node_edges(scores.graph, [n for n, _ in scores.top(40)])   # the circuit they induce

A **node** is a sender of :class:`~mechscope.circuits.graph.CircuitGraph`: the input
embeddings, an attention head or an MLP. Ablating a node means ablating every edge out
of it, so its attribution is the sum of its outgoing edges' EAP scores (a column of
:class:`~mechscope.circuits.attribution.EdgeScores`' grid), which needs no per-receiver
copies: the gradient at the node's own output already sums the gradients of every
receiver downstream of it. One forward and one backward pass of the plain model per step
score all ~300 nodes of smollm2-135m, where edge attribution runs every attention layer
once per receiver.

**Scores.** As for edges: the predicted change in the mean metric when the node alone is
ablated, ``(ablated − clean) · ∂m/∂output``. With ``steps > 1`` the gradient is averaged
over runs whose input embeddings move from the ablated to the clean input (α = k/steps,
k = 1 … steps), EAP-IG on inputs at node level. Heads are read at ``attn.hook_z`` (their
output is ``z·W_O``, linear in ``z``, so the product is the same; under Gemma's
post-attention norm it is that of ``z``), MLPs at ``hook_mlp_out`` and the input at
``blocks.0.hook_resid_pre``.

**Induced circuit.** :func:`node_edges` keeps the edges whose sender is a kept node (or
the input) and whose receiver belongs to a kept node (or the logits; a key/value input
belongs to every head of its group). Under resample ablation this circuit is exactly
the model with every other node's output patched to its corrupted value, which
:class:`~mechscope.circuits.node_masks.NodeEvaluator` computes in the plain model.
:func:`node_edge_scores` turns node scores into edge scores whose signed top-k are such
circuits, so that node circuits go through the same budgets and curves as edge methods.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.circuits.attribution import EdgeScores
from mechscope.ablations import check_ablation
from mechscope.circuits.evaluate import chunk_metric
from mechscope.circuits.faithfulness import budget_edges
from mechscope.circuits.graph import INPUT, CircuitGraph, Edge, Node
from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch
from mechscope.results import Result
from mechscope.tasks.task import Task

INPUT_POINT = "blocks.0.hook_resid_pre"


@dataclass(frozen=True)
class NodeScores(Result):
    """A score for every sender node of a graph (input, heads, MLPs)."""

    graph: CircuitGraph
    values: Float[Tensor, "sender"]
    """Scores in ``graph.senders`` order: the predicted change in the mean metric when
    the node is ablated (negative for a node that helps a higher-is-better metric)."""
    method: str
    """``node-eap`` (one step) or ``node-eap-ig`` (integrated over ``steps``)."""
    ablation: str
    """What an ablated node outputs (``resample``, ``mean``, ``zero``)."""
    steps: int
    """Integration steps."""
    task: str = ""

    def as_dict(self) -> dict[Node, float]:
        return {node: float(v) for node, v in zip(self.graph.senders, self.values)}

    def top(self, k: int, *, absolute: bool = True) -> list[tuple[Node, float]]:
        """The ``k`` best nodes: by |score|, or (signed) the most negative first."""
        scores = self.as_dict()
        key = (lambda n: (-abs(scores[n]), n)) if absolute else (lambda n: (scores[n], n))
        return [(n, scores[n]) for n in sorted(scores, key=key)[:k]]

    def to_dict(self) -> dict:
        return {"type": "NodeScores", "method": self.method, "ablation": self.ablation, "steps": self.steps,
                "task": self.task, "scores": {n.name: s for n, s in self.as_dict().items()}}


def node_attribution(
    model,
    task: Task,
    *,
    ablation: str = "resample",
    steps: int = 1,
    batch_size: int = 8,
    progress: bool = True,
) -> NodeScores:
    """Score every sender node (module docstring): ``steps`` forward and backward passes of
    the plain model per ``batch_size`` prompts."""
    if steps < 1 or batch_size < 1:
        raise InputError(f"steps and batch_size must be at least 1; received {steps} and {batch_size}")
    graph = CircuitGraph.of(model)
    points = hook_points(graph)
    clean = _activations(model, task.clean, points)
    ablated = ablated_activations(model, task, points, ablation)
    total = torch.zeros(len(graph.senders))
    n = len(task)
    chunks = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    metrics = [chunk_metric(model, task, rows) for rows in chunks]  # baselines measured once per chunk
    runs = [(rows, metric, k) for rows, metric in zip(chunks, metrics) for k in range(1, steps + 1)]
    for rows, metric, k in tqdm(runs, desc="node attribution", unit="run", disable=not progress or len(runs) == 1):
        start = _subset(clean[INPUT_POINT], rows)
        shift = _subset(ablated[INPUT_POINT], rows, like=start) - start
        alpha = k / steps
        positions = task.clean.last_positions()[rows]
        batch = TokenBatch(task.clean.ids[rows], task.clean.attention_mask[rows])

        def interpolate(resid, hook, shift=shift, alpha=alpha):
            return resid + (1 - alpha) * shift.to(resid)

        def at_answer(logits, positions=positions, metric=metric):
            return metric(logits[torch.arange(logits.shape[0]), positions.to(logits.device)])

        with model.hooks(fwd=[(INPUT_POINT, interpolate)]):
            _, cache = model.run_with_cache(batch, names=list(points), grad_metric=at_answer)
        for name, (first, per_head) in points.items():
            delta = _subset(ablated[name], rows, like=_subset(clean[name], rows)) - _subset(clean[name], rows)
            product = (delta.float() * cache.grads[name].float()).sum(dim=(0, 1))  # over batch, pos
            product = product.sum(-1) if per_head else product.sum().unsqueeze(0)
            total[first:first + product.shape[0]] += product.cpu() / steps
    method = "node-eap" if steps == 1 else "node-eap-ig"
    return NodeScores(graph=graph, values=total, method=method, ablation=ablation, steps=steps, task=task.name)


def hook_points(graph: CircuitGraph) -> dict[str, tuple[int, bool]]:
    """Hook point → (its first sender's index in ``graph.senders``, whether it has a head axis)."""
    index = graph.sender_index
    points = {INPUT_POINT: (index[INPUT], False)}
    for layer in range(graph.n_layers):
        points[f"blocks.{layer}.attn.hook_z"] = (index[Node(layer, 0, 0, "attn")], True)
        points[f"blocks.{layer}.hook_mlp_out"] = (index[Node(layer, 1, 0, "mlp")], False)
    return points


def _activations(model, batch: TokenBatch, points) -> dict[str, Tensor]:
    _, cache = model.run_with_cache(batch, names=list(points))
    return {name: cache[name] for name in points}


def ablated_activations(model, task: Task, points, ablation: str) -> dict[str, Tensor]:
    """What each hook point holds when its node is ablated (batch and pos may be 1), as in
    :func:`~mechscope.circuits.evaluate.ablated_outputs`."""
    check_ablation(ablation)
    if ablation == "zero":
        cfg = model.cfg
        shape = {True: (1, 1, cfg.n_heads, cfg.d_head), False: (1, 1, cfg.d_model)}
        return {name: torch.zeros(shape[per_head], device=model.device, dtype=model.dtype)
                for name, (_, per_head) in points.items()}
    corrupted = _activations(model, task.corrupt, points)
    if ablation == "resample":
        return corrupted
    real = task.corrupt.attention_mask.to(model.device)
    out = {}
    for name, value in corrupted.items():
        weights = real.to(value.dtype).reshape(*real.shape, *([1] * (value.dim() - 2)))
        out[name] = ((value * weights).sum((0, 1), keepdim=True) / weights.sum()).to(value.dtype)
    return out


def _subset(value: Tensor, rows: slice, *, like: Tensor | None = None) -> Tensor:
    """``value``'s prompts ``rows`` (an ablated value with batch 1 is broadcast to ``like``)."""
    part = value[rows] if value.shape[0] > 1 else value
    return part.expand_as(like) if like is not None else part


def node_edges(graph: CircuitGraph, nodes: Iterable[Node]) -> frozenset[Edge]:
    """The circuit ``nodes`` induce: every edge from a kept node or the input into a
    receiver of a kept node or the logits (module docstring)."""
    kept = set(nodes)
    bad = [n for n in kept if n not in graph.sender_index]
    if bad:
        raise InputError(f"nodes must be senders of the graph (input, heads a{{l}}.{{h}}, MLPs m{{l}}); received "
                         f"{sorted(str(n) for n in bad)[:3]}")
    kept.add(INPUT)
    return frozenset(e for e in graph.edges if e.sender in kept and _received(graph, e.receiver.node, kept))


def _received(graph: CircuitGraph, node: Node, kept: set[Node]) -> bool:
    return node.kind == "logits" or any(h in kept for h in graph.heads_of(node))


def top_nodes_within(graph: CircuitGraph, scores: NodeScores, budget: float, *, absolute: bool = True) -> list[Node]:
    """The most nodes, best first, whose induced circuit has at most ``budget`` (a
    fraction) of the graph's edges."""
    limit = budget_edges(graph.n_edges, budget)
    ranked = [n for n, _ in scores.top(len(graph.senders), absolute=absolute) if n != INPUT]
    low, high = 0, len(ranked)  # the edge count grows with every node added: bisect
    while low < high:
        mid = (low + high + 1) // 2
        if len(node_edges(graph, ranked[:mid])) <= limit:
            low = mid
        else:
            high = mid - 1
    return ranked[:low]


def node_edge_scores(scores: NodeScores, *, lower_is_better: bool = False) -> EdgeScores:
    """Edge scores whose signed ranking grows node-induced circuits one node at a time.

    A node's importance is how much ablating it costs the behaviour: ``−score`` for a
    higher-is-better metric, ``score`` for a lower-is-better one (KL). Each edge scores
    ``−min(importance of its sender, importance of its receiver's node)`` (a key/value
    input: the most important head of its group; the input and the logits count as the
    most important of all). So the edges scoring at most ``−t`` are exactly the circuit
    :func:`node_edges` induces from the nodes of importance at least ``t``, and the top-k
    edges by signed score (most negative first) are every edge among the k' most
    important nodes, the last one in part. These scores rank; they are not an edge's own
    effect, and ranked by |score| they induce no such circuits."""
    graph = scores.graph
    sign = 1.0 if lower_is_better else -1.0
    importance = {node: sign * v for node, v in scores.as_dict().items()}
    top = 2 * max(abs(v) for v in importance.values()) + 1.0
    importance[INPUT] = top

    def reach(node: Node) -> float:
        return top if node.kind == "logits" else max(importance[h] for h in graph.heads_of(node))

    grid = torch.zeros(len(graph.receivers), len(graph.senders))
    for edge in graph.edges:
        grid[graph.grid_index(edge)] = -min(importance[edge.sender], reach(edge.receiver.node))
    return EdgeScores(graph=graph, grid=grid, method=scores.method, ablation=scores.ablation, task=scores.task)
