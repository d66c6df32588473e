"""The computational graph that circuit discovery scores: components and the edges between them.

::

    graph = CircuitGraph.of(model)
    graph.n_edges, graph.senders[:3], graph.receivers[:3]
    edge = graph.edge("a1.3<q> ← m0")            # Edge(sender=m0, receiver=a1.3, input='q')
    str(edge)                                   # 'a1.3<q> ← m0'

**Nodes.** Senders write to the residual stream: the input embeddings (``input``), every
attention head (``a{layer}.{head}``, its output through ``W_O``) and every MLP
(``m{layer}``). Receivers read from it: every head's query, key and value input
(``a{layer}.{head}<q>``, ``<k>``, ``<v>``), every MLP's input (``m{layer}``) and the
logits (``logits``). A head or MLP is both: a receiver of what comes before it and a
sender to what comes after.

**Edges.** Every sender feeds every receiver downstream of it along the residual
stream: a receiver's input is the sum of its senders' outputs, so removing an edge means
taking that sender's output out of that one receiver's input. A head in layer l receives
from ``input``, every head and MLP of layers < l. An MLP in layer l also receives from
the heads of its own layer (they come first), except under **parallel attention**
(GPT-NeoX's ``use_parallel_residual``), where attention and MLP both read the block's
input and so the MLP of layer l receives nothing from layer l. The logits receive from
everything.

**Grouped-query attention.** A layer with ``n_heads`` query heads and ``n_kv_heads``
key/value heads has ``n_heads`` query inputs but only ``n_kv_heads`` key inputs and as
many value inputs, named after the key/value head: ``a{layer}.kv{g}<k>`` and
``<v>``. Key/value head g serves query heads ``g·group … (g+1)·group − 1`` with
``group = n_heads / n_kv_heads`` (transformers' ``repeat_kv`` order), so an edge into
``a5.kv1<k>`` reaches the keys of all query heads of group 1 at once, as the model
computes them: the graph, and any bookkeeping over its receivers, grows with the
key/value heads, not the query heads. Without grouping ``kv{g}`` is simply head g.

**Extra norms** (Gemma 3's post-attention and post-MLP norms, q/k norms) change no
edge: they sit inside a node, between what it reads and what it writes.

Nodes and edges are frozen, hashable and ordered (topologically: by layer, then
attention before MLP, then index).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.errors import InputError

INPUTS = ("q", "k", "v")
"""The inputs of an attention head, in the order receivers are listed."""


@dataclass(frozen=True, order=True)
class Node:
    """A component: ``input``, an attention head (or key/value head), an MLP, or ``logits``."""

    layer: int
    """Its layer; -1 for ``input``, ``n_layers`` for ``logits``."""
    slot: int
    """Order within the layer: 0 attention, 1 MLP (and 0 for ``input``/``logits``)."""
    index: int
    """Head index (key/value-head index for ``kv`` nodes); 0 otherwise."""
    kind: str
    """``input``, ``attn``, ``kv`` (a key/value head, receiver only), ``mlp`` or ``logits``."""

    @property
    def name(self) -> str:
        if self.kind == "attn":
            return f"a{self.layer}.{self.index}"
        if self.kind == "kv":
            return f"a{self.layer}.kv{self.index}"
        if self.kind == "mlp":
            return f"m{self.layer}"
        return self.kind

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, order=True)
class Receiver:
    """What a node reads: a head's ``q``, a key/value head's ``k`` or ``v``, or an MLP's or
    the logits' one input (``input`` None)."""

    node: Node
    input: str | None = None

    @property
    def name(self) -> str:
        return f"{self.node.name}<{self.input}>" if self.input else self.node.name

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, order=True)
class Edge:
    """One sender's output into one receiver's input, e.g. ``a12.3<q> ← m7``."""

    receiver: Receiver
    sender: Node

    @property
    def name(self) -> str:
        return f"{self.receiver.name} ← {self.sender.name}"

    def __str__(self) -> str:
        return self.name


INPUT = Node(-1, 0, 0, "input")


@dataclass(frozen=True)
class CircuitGraph:
    """The senders, receivers and edges of a model (see the module docstring)."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    parallel_attn: bool

    @classmethod
    def of(cls, model) -> CircuitGraph:
        """The graph of a :class:`~mechscope.HookedModel` (any supported family)."""
        cfg = model.cfg
        return cls(n_layers=cfg.n_layers, n_heads=cfg.n_heads, n_kv_heads=cfg.n_kv_heads,
                   parallel_attn=cfg.parallel_attn)

    def __post_init__(self) -> None:
        if min(self.n_layers, self.n_heads, self.n_kv_heads) < 1 or self.n_heads % self.n_kv_heads:
            raise InputError(
                f"a graph needs n_layers, n_heads, n_kv_heads >= 1 with n_heads a multiple of n_kv_heads; "
                f"received {self.n_layers}, {self.n_heads}, {self.n_kv_heads}"
            )

    @property
    def group(self) -> int:
        """Query heads per key/value head."""
        return self.n_heads // self.n_kv_heads

    def kv_head(self, head: int) -> int:
        """The key/value head whose keys and values query head ``head`` uses."""
        return head // self.group

    def heads_of(self, node: Node) -> tuple[Node, ...]:
        """The heads a receiving node belongs to: a key/value head's query heads, else itself."""
        if node.kind != "kv":
            return (node,)
        return tuple(Node(node.layer, 0, h, "attn") for h in range(node.index * self.group, (node.index + 1) * self.group))

    # ------------------------------------------------------------------ nodes
    @cached_property
    def senders(self) -> tuple[Node, ...]:
        """Every node that writes to the residual stream, in topological order."""
        nodes = [INPUT]
        for layer in range(self.n_layers):
            nodes += [Node(layer, 0, h, "attn") for h in range(self.n_heads)]
            nodes.append(Node(layer, 1, 0, "mlp"))
        return tuple(nodes)

    @cached_property
    def receivers(self) -> tuple[Receiver, ...]:
        """Every input that reads the residual stream, in topological order."""
        out: list[Receiver] = []
        for layer in range(self.n_layers):
            out += [Receiver(Node(layer, 0, h, "attn"), "q") for h in range(self.n_heads)]
            for which in ("k", "v"):
                out += [Receiver(Node(layer, 0, g, "kv"), which) for g in range(self.n_kv_heads)]
            out.append(Receiver(Node(layer, 1, 0, "mlp")))
        out.append(Receiver(Node(self.n_layers, 0, 0, "logits")))
        return tuple(out)

    def feeds(self, sender: Node, receiver: Receiver) -> bool:
        """Whether ``sender``'s output is part of ``receiver``'s input."""
        target = receiver.node
        if sender.kind == "input":
            return True
        if target.kind == "logits":
            return True
        if sender.layer < target.layer:
            return True
        # same layer: only a sequential block's MLP reads its own heads
        return (sender.layer == target.layer and sender.kind == "attn" and target.kind == "mlp"
                and not self.parallel_attn)

    # ------------------------------------------------------------------ edges
    @cached_property
    def edges(self) -> tuple[Edge, ...]:
        """Every edge, grouped by receiver (in receiver order), senders in order."""
        return tuple(Edge(r, s) for r in self.receivers for s in self.senders if self.feeds(s, r))

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @cached_property
    def _by_name(self) -> dict[str, Edge]:
        return {edge.name: edge for edge in self.edges}

    def edge(self, name: str) -> Edge:
        """The edge called ``name`` (``"a1.3<q> ← m0"``; ``<-`` works for ``←``)."""
        key = re.sub(r"\s*(<-|←)\s*", " ← ", name.strip())
        found = self._by_name.get(key)
        if found is None:
            raise InputError(
                f"no edge {name!r} in this graph ({self.n_layers} layers, {self.n_heads} heads, "
                f"{self.n_kv_heads} key/value heads); names look like 'a1.3<q> ← m0', 'a1.kv0<k> ← input', "
                f"'m1 ← a1.2', 'logits ← m{self.n_layers - 1}'"
            )
        return found

    # ------------------------------------------------------- edges as a grid
    @cached_property
    def receiver_index(self) -> dict[Receiver, int]:
        """Each receiver's row in the (receiver, sender) grid of masks and scores."""
        return {r: i for i, r in enumerate(self.receivers)}

    @cached_property
    def sender_index(self) -> dict[Node, int]:
        """Each sender's column in the (receiver, sender) grid."""
        return {s: i for i, s in enumerate(self.senders)}

    def grid_index(self, edge: Edge) -> tuple[int, int]:
        return self.receiver_index[edge.receiver], self.sender_index[edge.sender]

    def mask(self, edges: Iterable[Edge]) -> Float[Tensor, "receiver sender"]:
        """1 at each given edge, 0 elsewhere (also where no edge exists)."""
        grid = torch.zeros(len(self.receivers), len(self.senders))
        for edge in edges:
            grid[self.grid_index(edge)] = 1.0
        return grid

    @cached_property
    def edge_grid(self) -> Float[Tensor, "receiver sender"]:
        """1 where an edge exists."""
        return self.mask(self.edges)

    def to_scores(self, grid: Float[Tensor, "receiver sender"]) -> dict[Edge, float]:
        """Per-edge values from a (receiver, sender) grid."""
        values = grid.detach().float().cpu()
        return {edge: float(values[self.grid_index(edge)]) for edge in self.edges}

    def to_grid(self, scores: Mapping[Edge, float]) -> Float[Tensor, "receiver sender"]:
        """The inverse of :meth:`to_scores` (0 where no score is given)."""
        grid = torch.zeros(len(self.receivers), len(self.senders))
        for edge, value in scores.items():
            grid[self.grid_index(edge)] = float(value)
        return grid
