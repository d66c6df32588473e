"""Pruning nodes towards the full model's behaviour, prompt by prompt, not towards a larger metric.

::

    evaluator = NodeEvaluator.of(model, fit_task)
    pruned = prune_nodes(evaluator, budget=0.05)          # heads and MLPs whose circuit fits 5% of the edges
    pruned.nodes, pruned.path                             # the kept nodes; every round's size and metric
    edges = node_edges(evaluator.graph, pruned.nodes)

Starting from every node, each round computes each prompt's metric and its gradient
with respect to the node mask at the current circuit (one forward and one backward pass
of the plain model, :meth:`NodeEvaluator.gradient`), then removes nodes one at a time by
the linear prediction ``m_i(C ∖ n) ≈ m_i(C) − ∂m_i/∂mask_n`` until ``shrink`` of them are
left (or the circuit fits ``budget``), and re-linearises. Which node goes depends on
``objective``:

* ``faithful`` (the default): the node whose removal keeps the circuit closest to the
  full model on every prompt, ``Σ_i (m_i(C ∖ n) − m_i(N))²``. A circuit that overshoots
  the full model (f > 1) is as wrong as one that falls short, so nodes that work against
  the answer stay when the full model needs them.
* ``metric``: the node whose removal lowers the mean metric least (or raises a lower-is-
  better one least): what ranking by signed score does, and the way circuits come to
  overshoot f = 1 on their own prompts and miss it on others.

Rounds re-linearise where the circuit is, as :func:`~mechscope.circuits.prune.prune_circuit`
does for edges; nodes are cheap, so each round costs the plain model's passes only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import Tensor
from tqdm.auto import tqdm

from mechscope.circuits.faithfulness import budget_edges
from mechscope.circuits.graph import CircuitGraph, Node
from mechscope.circuits.node_masks import NodeEvaluator, count_node_edges, nodes_of
from mechscope.errors import InputError
from mechscope.results import Result

OBJECTIVES = ("faithful", "metric")
"""What node pruning keeps close: the full model's per-prompt metric, or a large mean metric."""


@dataclass(frozen=True)
class NodePruning(Result):
    """The nodes pruning kept, and the circuit's size and metric after every round."""

    graph: CircuitGraph
    nodes: tuple[Node, ...]
    """The kept heads and MLPs (the input is always kept)."""
    n_edges: int
    """Edges of the circuit they induce."""
    objective: str
    path: tuple[tuple[int, int, float], ...]
    """Per round: (nodes kept, edges of their circuit, mean metric at the start of the round)."""
    m_full: float
    """The full model's mean metric on the pruning prompts."""
    passes: int
    """Forward-and-backward passes over the prompts spent."""


def prune_nodes(
    evaluator: NodeEvaluator,
    *,
    budget: float,
    start: Iterable[Node] | None = None,
    objective: str = "faithful",
    shrink: float = 0.8,
    progress: bool = True,
) -> NodePruning:
    """Prune ``start`` (default: every node) until its circuit has at most ``budget`` (a
    fraction) of the graph's edges (module docstring)."""
    if objective not in OBJECTIVES:
        raise InputError(f"objective must be one of {', '.join(OBJECTIVES)}; received {objective!r}")
    if not 0 < shrink < 1:
        raise InputError(f"shrink is the fraction of nodes each round keeps, in (0, 1); received {shrink!r}")
    graph = evaluator.graph
    limit = budget_edges(graph.n_edges, budget)
    mask = evaluator.mask(graph.senders[1:] if start is None else start)
    target = evaluator.per_prompt(evaluator.mask(graph.senders[1:]))[0]
    sign = -1.0 if evaluator.task.metric == "kl" else 1.0
    path: list[tuple[int, int, float]] = []
    passes = 1
    bar = tqdm(desc="pruning nodes", unit="round", disable=not progress)
    while count_node_edges(graph, mask) > limit:
        values, grads = evaluator.gradient(mask)
        passes += 1
        kept = int(mask[1:].sum())
        path.append((kept, count_node_edges(graph, mask), float(values.mean())))
        keep = max(1, int(kept * shrink))
        mask = _remove(graph, mask, values - target, grads.cpu(), keep, limit, objective, sign)
        bar.update()
    bar.close()
    nodes = tuple(nodes_of(graph, mask))
    final = float(evaluator.metrics(mask)[0])
    path.append((len(nodes), count_node_edges(graph, mask), final))
    return NodePruning(graph=graph, nodes=nodes, n_edges=count_node_edges(graph, mask), objective=objective,
                       path=tuple(path), m_full=float(target.mean()), passes=passes + 1)


def _remove(graph: CircuitGraph, mask: Tensor, residual: Tensor, grads: Tensor, keep: int, limit: int,
            objective: str, sign: float) -> Tensor:
    """Remove nodes one by one under the linear prediction until ``keep`` are left or the
    circuit fits ``limit`` edges. ``residual`` is each prompt's metric minus the full model's."""
    mask = mask.clone()
    residual = residual.cpu().clone()
    mean_effect = grads.mean(0)  # removing n moves the mean metric by about −mean_effect[n]
    while int(mask[1:].sum()) > keep and count_node_edges(graph, mask) > limit:
        candidates = mask.nonzero().flatten()
        candidates = candidates[candidates > 0]  # never the input
        if objective == "faithful":
            after = residual.unsqueeze(1) - grads[:, candidates]  # prompt × candidate
            cost = after.pow(2).sum(0)
        else:
            cost = sign * mean_effect[candidates]
        chosen = int(candidates[int(cost.argmin())])
        mask[chosen] = 0.0
        residual -= grads[:, chosen]
    return mask
