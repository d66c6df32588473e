"""The slow reference circuit evaluator: edge by edge, through public hook points only.

It shares no machinery with :mod:`mechscope.circuits.edge_run`. Layer by layer, each
receiver's input is *built* as a sum over its edges,

    x_r = Σ_{s feeds r} (out_s if r ← s is in the circuit else ablated_s) + biases no sender owns,

and the node is run on it with ordinary hooks: for every query, key and value receiver
one full forward with ``ln1.hook_normalized`` replaced by ``ln1(x_r)``, keeping that
head's ``hook_q``/``hook_k``/``hook_v``; then a forward with the assembled q, k and v,
keeping ``hook_z`` (the heads' outputs); then one with ``ln2.hook_normalized`` replaced
by ``ln2(x_mlp)``, keeping ``hook_mlp_out``; finally the logits from
``ln_final(x_logits)``. Dozens of forward passes per layer: for tests on tiny models.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from einops import einsum
from torch import Tensor

from mechscope.ablations import check_ablation
from mechscope.circuits.graph import INPUT, CircuitGraph, Edge, Node, Receiver
from mechscope.hooks.tokens import TokenBatch
from mechscope.tasks.task import Task, at_answer


@torch.no_grad()
def evaluate_reference(model, task: Task, edges: Iterable[Edge], *, ablation: str = "resample") -> float:
    """The mean task metric with only ``edges`` clean, computed edge by edge."""
    check_ablation(ablation)
    graph = CircuitGraph.of(model)
    kept = frozenset(edges)
    ablated = _ablated(model, graph, task, ablation)
    clean = task.clean
    current: dict[Node, Tensor] = {INPUT: model.run_with_cache(clean, names="blocks.0.hook_resid_pre")[1]
                                   ["resid_pre", 0]}

    def read(receiver: Receiver) -> Tensor:
        x = torch.zeros_like(current[INPUT]) + _unowned(model, graph, receiver).to(current[INPUT])
        for sender in graph.senders:
            if graph.feeds(sender, receiver):
                x = x + (current[sender] if Edge(receiver, sender) in kept else ablated[sender])
        return x

    for layer in range(graph.n_layers):
        qkv = {kind: _read_heads(model, clean, layer, graph, kind, read) for kind in ("q", "k", "v")}
        z = _run(model, clean, [(f"blocks.{layer}.attn.hook_{kind}", _put(qkv[kind])) for kind in qkv],
                 keep=f"blocks.{layer}.attn.hook_z")
        for h, head in enumerate(_head_outputs(model, clean, layer, z, qkv)):
            current[Node(layer, 0, h, "attn")] = head
        mlp = Node(layer, 1, 0, "mlp")
        normalized = model.adapter.norm(layer, "ln2")(read(Receiver(mlp)))
        current[mlp] = _run(model, clean, [(f"blocks.{layer}.ln2.hook_normalized", _put(normalized))],
                            keep=f"blocks.{layer}.hook_mlp_out")
    logits_in = model.adapter.norm(None, "ln_final")(read(Receiver(Node(graph.n_layers, 0, 0, "logits"))))
    logits = model.run_with_hooks(clean, fwd=[("ln_final.hook_normalized", _put(logits_in))])
    return float(task.metric_fn(model)(at_answer(logits, task.answer_pos.to(logits.device))).mean())


def _read_heads(model, batch: TokenBatch, layer: int, graph: CircuitGraph, kind: str, read) -> Tensor:
    """hook_q (or k, v) of ``layer`` with head h computed from receiver h's own input."""
    node_kind, n = ("attn", graph.n_heads) if kind == "q" else ("kv", graph.n_kv_heads)
    heads = []
    for h in range(n):
        x = read(Receiver(Node(layer, 0, h, node_kind), kind))
        normalized = model.adapter.norm(layer, "ln1")(x)
        full = _run(model, batch, [(f"blocks.{layer}.ln1.hook_normalized", _put(normalized))],
                    keep=f"blocks.{layer}.attn.hook_{kind}")
        heads.append(full[:, :, h])
    return torch.stack(heads, dim=2)


def _head_outputs(model, batch: TokenBatch, layer: int, z: Tensor, qkv: dict[str, Tensor]) -> Tensor:
    """Each head's output z[h] @ W_O[h] (through Gemma's post-norm at this run's scale)."""
    adapter = model.adapter
    heads = einsum(z, adapter.W_O(layer).to(z), "batch pos head d_head, head d_head d_model -> head batch pos d_model")
    scale = None
    if adapter.head_scale_point is not None:  # the heads pass a post norm at this run's scale (Gemma)
        scale = _run(model, batch, [(f"blocks.{layer}.attn.hook_{k}", _put(v)) for k, v in qkv.items()],
                     keep=f"blocks.{layer}.{adapter.head_scale_point}")
    return adapter.heads_to_residual(layer, heads, scale)


def _unowned(model, graph: CircuitGraph, receiver: Receiver) -> Tensor:
    """What the residual holds that no sender owns: the attention output biases upstream."""
    total = torch.zeros(model.cfg.d_model)
    for layer in range(graph.n_layers):
        head = Node(layer, 0, 0, "attn")
        bias = model.adapter.b_O(layer)
        if bias is not None and graph.feeds(head, receiver):
            total = total + bias.detach().float().cpu()
    return total


def _ablated(model, graph: CircuitGraph, task: Task, ablation: str) -> dict[Node, Tensor]:
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.{k}" for i in range(graph.n_layers)
                                           for k in ("attn.hook_z", "hook_mlp_out", model.adapter.head_scale_point)
                                           if k is not None and f"blocks.{i}.{k}" in model.hook_names()]
    _, cache = model.run_with_cache(task.corrupt, names=names)
    outputs = {INPUT: cache["resid_pre", 0]}
    for layer in range(graph.n_layers):
        for h, head in enumerate(cache.stack_head_results(layer + 1).components[layer * graph.n_heads:]):
            outputs[Node(layer, 0, h, "attn")] = head
        outputs[Node(layer, 1, 0, "mlp")] = cache["mlp_out", layer]
    if ablation == "resample":
        return outputs
    real = task.corrupt.attention_mask.to(outputs[INPUT])[:, :, None]
    return {node: (value * real).sum((0, 1)) / real.sum() * (ablation == "mean") for node, value in outputs.items()}


def _run(model, batch: TokenBatch, fwd: list, *, keep: str) -> Tensor:
    kept: dict[str, Tensor] = {}

    def store(tensor: Tensor, hook) -> None:
        kept["value"] = tensor.clone()

    model.run_with_hooks(batch, fwd=[*fwd, (keep, store)])
    return kept["value"]


def _put(value: Tensor):
    return lambda tensor, hook: value.to(tensor)
