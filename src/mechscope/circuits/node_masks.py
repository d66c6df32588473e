"""Node circuits evaluated in the plain model: every node outside the circuit patched to its ablated output.

::

    evaluator = NodeEvaluator.of(model, task, ablation="resample")
    mask = evaluator.mask(nodes)                   # 1 for each kept node (and the input), 0 elsewhere
    evaluator.metrics(mask)                        # the mean metric: one forward pass of the plain model
    values, gradient = evaluator.gradient(mask)    # per prompt: the metric and ∂metric/∂mask

A node mask holds one number per sender of the graph (``graph.senders`` order: input,
then each layer's heads and MLP). A node with mask ``m`` outputs
``ablated + m·(output − ablated)``, its output in this run pulled towards its ablated
one (``attn.hook_z`` for heads, ``hook_mlp_out`` for MLPs, ``blocks.0.hook_resid_pre``
for the input). At 0/1 masks under resample ablation this is exactly the circuit
:func:`~mechscope.circuits.nodes.node_edges` induces, as
:class:`~mechscope.circuits.evaluate.EdgeEvaluator` computes it (tests hold the two
together), but it costs one forward pass of the plain model instead of one with a copy
of each attention layer per distinct receiver input; a gradient with respect to the
mask, per prompt, costs one backward pass.

Gemma's post-attention norm acts on the sum of the heads, so there a head pulled at
``z`` is not quite the edge evaluator's head (whose output is scaled by the norm of the
run it came from); the difference is that norm's rescaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.circuits.graph import CircuitGraph, Node
from mechscope.circuits.nodes import ablated_activations, hook_points
from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch
from mechscope.tasks.task import Task, answer_logits


@dataclass(frozen=True)
class NodeEvaluator:
    """Metrics of node circuits of one model on one task (module docstring)."""

    model: object
    task: Task
    graph: CircuitGraph
    ablation: str
    ablated: dict[str, Tensor]
    """Each hook point's ablated value (batch and pos may be 1)."""
    row_metrics: tuple
    """Per chunk of ``batch_size`` prompts, the metric of each row (baselines measured once)."""
    batch_size: int = 8
    """Prompts per forward pass (bounds memory)."""

    @classmethod
    def of(cls, model, task: Task, *, ablation: str = "resample", batch_size: int = 8) -> NodeEvaluator:
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1; received {batch_size}")
        graph = CircuitGraph.of(model)
        n = len(task)
        chunks = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
        return cls(model=model, task=task, graph=graph, ablation=ablation, batch_size=batch_size,
                   ablated=ablated_activations(model, task, hook_points(graph), ablation),
                   row_metrics=row_metrics(model, task, chunks))

    def mask(self, nodes) -> Float[Tensor, "node"]:
        """1 at each of ``nodes`` and the input, 0 elsewhere."""
        mask = torch.zeros(len(self.graph.senders))
        index = self.graph.sender_index
        for node in nodes:
            if node not in index:
                raise InputError(f"{node} is not a sender node of this graph (input, a{{l}}.{{h}} or m{{l}})")
            mask[index[node]] = 1.0
        mask[0] = 1.0
        return mask

    def metrics(self, masks: Float[Tensor, "*mask node"]) -> Float[Tensor, "mask"]:
        """The mean metric over prompts of each mask."""
        return self.per_prompt(masks).mean(1)

    def per_prompt(self, masks: Float[Tensor, "*mask node"]) -> Float[Tensor, "mask prompt"]:
        """The metric of each prompt under each mask."""
        masks = self._check(masks)
        with torch.no_grad():
            return torch.cat([self._run(masks.unsqueeze(1), i) for i in range(len(self.row_metrics))], dim=1)

    def __call__(self, nodes) -> float:
        """The mean metric of the circuit of ``nodes``."""
        return float(self.metrics(self.mask(nodes))[0])

    def gradient(self, mask: Float[Tensor, "node"]) -> tuple[Float[Tensor, "prompt"], Float[Tensor, "prompt node"]]:
        """Each prompt's metric at ``mask`` and its gradient with respect to the mask:
        removing node n from prompt i's circuit changes its metric by about ``−gradient[i, n]``."""
        mask = self._check(mask)[0]
        values, grads = [], []
        for chunk in range(len(self.row_metrics)):
            rows = self._rows(chunk)
            leaf = mask.expand(rows.stop - rows.start, -1).clone().requires_grad_(True)
            with torch.enable_grad():
                metric = self._run(leaf.unsqueeze(0), chunk)[0]
                (grad,) = torch.autograd.grad(metric.sum(), [leaf])
            values.append(metric.detach())
            grads.append(grad)
        return torch.cat(values), torch.cat(grads)

    def _rows(self, chunk: int) -> slice:
        return slice(chunk * self.batch_size, min((chunk + 1) * self.batch_size, len(self.task)))

    def _run(self, masks: Float[Tensor, "mask prompt_or_1 node"], chunk: int) -> Float[Tensor, "mask prompt"]:
        """The metric of each prompt of chunk ``chunk`` under each mask (rows of the run: mask × prompt)."""
        rows = self._rows(chunk)
        n_masks, n = masks.shape[0], rows.stop - rows.start
        clean = self.task.clean
        batch = TokenBatch(clean.ids[rows].repeat(n_masks, 1), clean.attention_mask[rows].repeat(n_masks, 1))
        flat = masks.expand(n_masks, n, -1).reshape(n_masks * n, -1).to(self.model.device)
        hooks = [(name, self._pull(name, first, per_head, flat, rows, n_masks))
                 for name, (first, per_head) in hook_points(self.graph).items()]
        with self.model.hooks(fwd=hooks):
            logits = self.model(batch)  # not answer_logits, which runs without gradients
        logits = logits[torch.arange(logits.shape[0]), batch.last_positions().to(logits.device)]
        return self.row_metrics[chunk](logits).view(n_masks, n)

    def _pull(self, name: str, first: int, per_head: bool, masks: Tensor, rows: slice, n_masks: int):
        ablated = self.ablated[name]
        if ablated.shape[0] > 1:  # per prompt (resample): tile over the masks
            ablated = ablated[rows].repeat(n_masks, *([1] * (ablated.dim() - 1)))
        width = self.graph.n_heads if per_head else 1

        def hook(value: Tensor, hook) -> Tensor:
            m = masks[:, first:first + width].to(value.dtype)
            m = m.view(m.shape[0], 1, width, 1) if per_head else m.view(m.shape[0], 1, 1)
            return ablated.to(value) + m * (value - ablated.to(value))
        return hook

    def _check(self, masks: Tensor) -> Tensor:
        if masks.dim() == 1:
            masks = masks.unsqueeze(0)
        if masks.dim() != 2 or masks.shape[1] != len(self.graph.senders):
            raise InputError(f"node masks must have one value per sender node ({len(self.graph.senders)}), or be a "
                             f"stack of such; received shape {tuple(masks.shape)}. Build one with evaluator.mask(nodes)")
        return masks.float()


def row_metrics(model, task: Task, chunks: list[slice]) -> tuple:
    """The task's metric, per row, for each chunk of prompts (a normalized metric keeps the
    whole task's baselines, as :func:`~mechscope.circuits.evaluate.chunk_metric`; they are
    measured once, not once per chunk)."""
    if task.metric != "normalized":
        return tuple(task.subset(rows).metric_fn(model) for rows in chunks)
    whole = task.with_metric("logit_diff").metric_fn(model)
    clean_value = whole(answer_logits(model, task.clean)).mean()
    span = clean_value - whole(answer_logits(model, task.corrupt)).mean()
    corrupt_value = clean_value - span

    def normalized(rows: slice):
        diff = task.subset(rows).with_metric("logit_diff").metric_fn(model)
        return lambda logits: (diff(logits) - corrupt_value) / span

    return tuple(normalized(rows) for rows in chunks)


def nodes_of(graph: CircuitGraph, mask: Tensor) -> list[Node]:
    """The nodes (not the input) a 0/1 mask keeps."""
    return [node for node, m in zip(graph.senders[1:], mask[1:].tolist()) if m > 0.5]


def count_node_edges(graph: CircuitGraph, mask: Float[Tensor, "node"]) -> int:
    """How many edges :func:`~mechscope.circuits.nodes.node_edges` keeps for a 0/1 node
    mask (the input counted as kept), without listing them."""
    senders = mask.float().clone()
    senders[0] = 1.0
    kept = {node: senders[i] for i, node in enumerate(graph.senders)}
    receives = torch.tensor([1.0 if r.node.kind == "logits" else float(max(kept[h] for h in graph.heads_of(r.node)))
                             for r in graph.receivers])
    return int(receives @ graph.edge_grid @ senders)
