"""Scoring circuit-discovery methods against circuits known by construction.

A method's edge scores are judged by how well they separate the edges of a known circuit
(positives) from every other edge (negatives): the ROC AUC, the probability that a random
positive edge scores above a random negative one::

    graph = CircuitGraph.of(model)
    known = induction_edges(graph, previous_token_head=0, induction_heads=[2])
    scores = edge_attribution_patching(model, task, method="eap")
    roc_auc(scores.as_dict(), known)        # 1.0 when every known edge outscores every other

AUC 1 is a perfect ranking, 0.5 no better than chance (or every score equal), 0 exactly
backwards. It needs no budget or threshold, unlike counting the known edges in a top-k
circuit, and it is what Conmy et al. (ACDC) report against circuits found by hand.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Mapping, Sequence

from mechscope.circuits.graph import CircuitGraph, Edge
from mechscope.errors import InputError


def roc_auc(scores: Mapping[Edge, float], positives: Collection[Edge], *, absolute: bool = True) -> float:
    """P(score of a random positive > score of a random negative), ties counting 1/2.

    Negatives are every scored edge that is not a positive. With ``absolute`` (the
    default) edges are ranked by ``|score|``: EAP's and ACDC's scores are negative for an
    edge that helps a higher-is-better metric, and an edge that hurts it matters as much.
    Exact (the Mann–Whitney U statistic over all positive–negative pairs, divided by
    their number), in O(n log n).
    """
    positive_set = set(positives)
    missing = sorted(str(e) for e in positive_set if e not in scores)
    if missing:
        raise InputError(
            f"every positive edge needs a score; {len(missing)} have none, e.g. {missing[:3]}. Pass the scores of "
            f"every edge of the graph (EdgeScores.as_dict()), and positives named in the same graph"
        )
    bad = [str(e) for e, s in scores.items() if not math.isfinite(s)]
    if bad:
        raise InputError(f"scores must be finite numbers to be ranked; {len(bad)} are not, e.g. {bad[:3]}")
    value = (lambda s: abs(float(s))) if absolute else float
    pos = [value(s) for e, s in scores.items() if e in positive_set]
    neg = sorted(value(s) for e, s in scores.items() if e not in positive_set)
    if not pos or not neg:
        raise InputError(
            f"ROC AUC needs at least one positive and one negative edge; received {len(pos)} positives and "
            f"{len(neg)} negatives among {len(scores)} scored edges. Positives are the known circuit's edges, "
            f"negatives every other scored edge"
        )
    # 2·U in integers: each pair with the positive above counts 2, each tie 1
    twice_u = sum(2 * bisect_left(neg, s) + (bisect_right(neg, s) - bisect_left(neg, s)) for s in pos)
    return twice_u / (2 * len(pos) * len(neg))


def induction_edges(graph: CircuitGraph, previous_token_head: int, induction_heads: Sequence[int]) -> frozenset[Edge]:
    """The edges of the textbook induction circuit of a two-layer attention-only model.

    ``previous_token_head`` is a head of layer 0 (p), ``induction_heads`` heads of layer 1.
    The previous-token head reads positions for its query and key and the token for its
    value; each induction head h reads the current token for its query, the
    previous-token head's output for its key (K-composition) and the token for its value,
    and writes the logits::

        a0.{p}<q> ← input     a0.kv{p'}<k> ← input     a0.kv{p'}<v> ← input
        a1.{h}<q> ← input     a1.kv{h'}<k> ← a0.{p}    a1.kv{h'}<v> ← input    logits ← a1.{h}

    with p', h' their key/value heads (``graph.kv_head``). In a deeper model these are
    still edges, but only the direct paths of a two-layer mechanism.
    """
    if graph.n_layers < 2:
        raise InputError(f"the induction circuit needs two layers; the graph has {graph.n_layers}")
    heads = [previous_token_head, *induction_heads]
    if not induction_heads or any(not 0 <= h < graph.n_heads for h in heads):
        raise InputError(
            f"previous_token_head and induction_heads must be head indices in 0 .. {graph.n_heads - 1}, with at "
            f"least one induction head; received {previous_token_head!r} and {list(induction_heads)!r}. Pass "
            f"head indices, not (layer, head) pairs: e.g. check.previous_token_head[1]"
        )
    p, kv = previous_token_head, graph.kv_head
    names = [f"a0.{p}<q> ← input", f"a0.kv{kv(p)}<k> ← input", f"a0.kv{kv(p)}<v> ← input"]
    for h in induction_heads:
        g = kv(h)
        names += [f"a1.{h}<q> ← input", f"a1.kv{g}<k> ← a0.{p}", f"a1.kv{g}<v> ← input", f"logits ← a1.{h}"]
    return frozenset(graph.edge(name) for name in names)
