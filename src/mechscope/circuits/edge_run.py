"""One forward pass in which every receiver of the circuit graph reads its own input.

In the full model a receiver reads the residual stream: the sum of every upstream
sender's output (plus biases no sender owns). Removing an edge ``r ← s`` means giving
``r`` the ablated value of ``s`` (its output on the corrupted prompt, its mean, or zero)
while everything else stays live. So receiver ``r`` reads

    x_r = base_r + Σ_s mask[r, s] · (out_s − ablated_s),   base_r = biases + Σ_{s feeds r} ablated_s

where ``out_s`` is what ``s`` output in this very run. Built this way, from the ablated
inputs up, an input whose every edge is ablated is exactly ``base_r`` (correcting the
live residual instead, ``resid − Σ (1 − mask)(out − ablated)``, would leave float
residue that the norms inside attention blow up when ``base_r`` is near zero).
:func:`edge_run` makes one forward pass compute this for every receiver at once, with
masks of shape (mask, receiver, sender): several masks run side by side as copies of
the batch (copy-major rows).

**Per-head inputs without reimplementing attention.** Each query head, and each
key/value head, of a layer may read a different input. The layer's input norm is fed
``C = n_heads + 2·n_kv_heads`` stacked copies of the batch, copy ``c`` corrected for
receiver ``c`` (in graph order: queries, keys, values); the attention module runs on
all copies, with its rotary tables and mask repeated to match, and at ``hook_q/k/v``
mechscope's attention function takes query head ``h`` from copy ``h``, key/value head
``g`` from copy ``n_heads + g`` (values: ``n_heads + n_kv_heads + g``) and gives every
copy the assembled tensors. The output projection then keeps one copy. Projections,
q/k norms and rotary are the model's own code; only per-head selection is ours. The
copies grow with the key/value heads, not the query heads, under grouped-query attention.

MLP and logits receivers are simpler: their input norm's input is corrected in place.
Head outputs are ``z[h] @ W_O[h]``; under Gemma's post-attention norm each is scaled by
the norm's weight over this run's scale, so they still sum to what the residual gets.

Gradients: with ``on_grad``, the receivers' inputs are tensors of their own and
``on_grad(first_receiver, grad)`` gets ∂metric/∂x_r for each group of receivers during
the backward pass — what edge attribution patching multiplies by ``ablated − clean``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from einops import einsum
from jaxtyping import Float
from torch import Tensor

from mechscope.circuits.graph import CircuitGraph
from mechscope.hooks import attention

OnGrad = Callable[[int, Float[Tensor, "receiver rows pos d_model"]], None]
"""``on_grad(first_receiver, grad)``: gradients at a group of consecutive receivers."""
Override = Callable[[Float[Tensor, "rows pos d_model"]], Float[Tensor, "rows pos d_model"]]
"""Replaces the total output of one sender group (``input``, a layer's attention or MLP)."""


@dataclass(frozen=True)
class Layout:
    """Where each layer's receivers and senders sit in the graph's (receiver, sender) grid."""

    graph: CircuitGraph

    @property
    def copies(self) -> int:
        """Attention receivers per layer: queries, then keys and values of key/value heads."""
        return self.graph.n_heads + 2 * self.graph.n_kv_heads

    def attn_receivers(self, layer: int) -> slice:
        start = layer * (self.copies + 1)
        return slice(start, start + self.copies)

    def mlp_receiver(self, layer: int) -> int:
        return layer * (self.copies + 1) + self.copies

    @property
    def logits_receiver(self) -> int:
        return self.graph.n_layers * (self.copies + 1)

    def is_head(self, sender: int) -> bool:
        return (sender - 1) % (self.graph.n_heads + 1) != self.graph.n_heads

    def layer_of(self, sender: int) -> int:
        return (sender - 1) // (self.graph.n_heads + 1)

    def head_senders(self, layer: int) -> slice:
        start = 1 + layer * (self.graph.n_heads + 1)
        return slice(start, start + self.graph.n_heads)

    def mlp_sender(self, layer: int) -> int:
        return 1 + layer * (self.graph.n_heads + 1) + self.graph.n_heads


@dataclass
class RunState:
    """What an :func:`edge_run` saw; filled during the forward pass."""

    outputs: list[Tensor] = field(default_factory=list)
    """Sender outputs in sender order, one (senders, rows, pos, d_model) tensor per group."""
    leaf: Tensor | None = None
    """With ``on_grad``: the input embeddings, the leaf every gradient flows back to."""

    def stacked(self) -> Float[Tensor, "sender rows pos d_model"]:
        return torch.cat(self.outputs)


@contextmanager
def edge_run(
    model,
    graph: CircuitGraph,
    *,
    masks: Float[Tensor, "mask receiver sender"] | None = None,
    ablated: Float[Tensor, "sender batch pos d_model"] | None = None,
    on_grad: OnGrad | None = None,
    overrides: dict[tuple[str, int], Override] | None = None,
    keep_outputs: bool = False,
) -> Iterator[RunState]:
    """Hooks for one forward pass in which receivers read corrected inputs (module docstring).

    Args:
        masks: per mask, how much of each edge stays clean (1) or is ablated (0); entries
            where no edge exists must be 0. Rows of the run are ``mask × batch``. None:
            the plain model (nothing ablated).
        ablated: each sender's ablated output on each prompt (needed with ``masks``).
        on_grad: called with the gradient at each group of receivers' inputs; every
            receiver then reads a tensor of its own, even with nothing ablated.
        overrides: ``{("input", 0) | ("attn", layer) | ("mlp", layer): fn}`` replaces
            that sender group's total output (e.g. to interpolate it).
        keep_outputs: keep every sender's output in the returned state (with
            ``masks``, what is kept is ``output − ablated``).
    """
    plumbing = _Plumbing(model, graph, masks, ablated, on_grad, overrides or {}, keep_outputs)
    handles: list = []
    adapter = model.adapter
    try:
        handles.append(adapter.block(0).register_forward_pre_hook(plumbing.input_hook, with_kwargs=True))
        for layer in range(graph.n_layers):
            hooks = [
                (adapter.norm(layer, "ln1"), "pre", plumbing.attn_input_hook(layer)),
                (adapter.in_block(layer, adapter.attn_path), "pre", plumbing.repeat_kwargs_hook),
                (adapter.in_block(layer, adapter.out_proj_path), "pre", plumbing.one_copy_hook),
                (adapter.in_block(layer, adapter.out_proj_path), "post", plumbing.heads_hook(layer)),
                (adapter.attn_out_module(layer), "post", plumbing.override_hook(("attn", layer))),
                (adapter.norm(layer, "ln2"), "pre", plumbing.single_input_hook(layer)),
                (adapter.mlp_out_module(layer), "post", plumbing.mlp_hook(layer)),
            ]
            for module, when, fn in hooks:
                register = module.register_forward_pre_hook if when == "pre" else module.register_forward_hook
                handles.append(register(fn, with_kwargs=True))
        handles.append(adapter.norm(None, "ln_final").register_forward_pre_hook(
            plumbing.single_input_hook(None), with_kwargs=True))
        sites = {layer: attention.AttentionSite(run=plumbing.assemble_hook) for layer in range(graph.n_layers)}
        with attention.attention_sites(adapter, sites):
            yield plumbing.state
    finally:
        for handle in handles:
            handle.remove()


class _Plumbing:
    """The hook functions of one :func:`edge_run`, sharing its state."""

    def __init__(self, model, graph, masks, ablated, on_grad, overrides, keep_outputs):
        self.adapter = model.adapter
        self.layout = Layout(graph)
        self.graph = graph
        self.mask_grid = masks
        self.edge_grid = graph.edge_grid.bool()
        self.bases: list[Tensor] = []  # per sender group: Σ ablated (+ its bias), as recorded
        self.ablated = ablated
        self.on_grad = on_grad
        self.overrides = overrides
        self.expand = masks is not None or on_grad is not None
        self.keep = masks is not None or keep_outputs
        self.state = RunState()
        self.rows = 0  # mask × batch, known at the first block
        self.masks = 1 if masks is None else masks.shape[0]
        self.copy_of = torch.arange(self.layout.copies)  # this layer's attention copy of each receiver

    # ------------------------------------------------------------ senders
    def _record(self, first: int, outputs: Float[Tensor, "sender rows pos d_model"]) -> None:
        """Keep what senders ``first …`` output in this run (their delta, when ablating)."""
        if not self.keep:
            return
        if self.mask_grid is not None:
            ablated = self.ablated[first:first + outputs.shape[0]].to(outputs)
            outputs = outputs.unflatten(1, (self.masks, -1)) - ablated.unsqueeze(1)
            outputs = outputs.flatten(1, 2)
            base = ablated.sum(0)
            if first > 0 and self.layout.is_head(first):
                bias = self.adapter.b_O(self.layout.layer_of(first))
                base = base if bias is None else base + bias.to(base)
            self.bases.append(base)
        self.state.outputs.append(outputs)

    def input_hook(self, module, args, kwargs):
        hidden = _main(args, kwargs)
        self.rows = hidden.shape[0]
        if ("input", 0) in self.overrides:
            hidden = self.overrides[("input", 0)](hidden)
        if self.on_grad is not None:  # gradients flow from here on (not into the embeddings)
            hidden = hidden.detach().requires_grad_(True)
            self.state.leaf = hidden
        self._record(0, hidden.unsqueeze(0))
        return _with_main(args, kwargs, hidden)

    def heads_hook(self, layer: int):
        def hook(module, args, kwargs, output):
            if not self.keep:
                return output
            z = _main(args, kwargs)
            w_o = self.adapter.W_O(layer)
            heads = einsum(z.unflatten(-1, (w_o.shape[0], w_o.shape[1])), w_o.to(z),
                           "rows pos head d_head, head d_head d_model -> head rows pos d_model")
            heads = self.adapter.heads_to_residual(layer, heads, self.adapter.attn_output_scale(layer, output))
            self._record(self.layout.head_senders(layer).start, heads)
            return output
        return hook

    def mlp_hook(self, layer: int):
        def hook(module, args, kwargs, output):
            out = _main_out(output)
            if ("mlp", layer) in self.overrides:
                out = self.overrides[("mlp", layer)](out)
                output = _with_main_out(output, out)
            self._record(self.layout.mlp_sender(layer), out.unsqueeze(0))
            return output
        return hook

    def override_hook(self, key: tuple[str, int]):
        def hook(module, args, kwargs, output):
            if key not in self.overrides:
                return output
            return _with_main_out(output, self.overrides[key](_main_out(output)))
        return hook

    # ---------------------------------------------------------- receivers
    def _fork(self, hidden: Tensor, receivers: slice) -> Float[Tensor, "receiver rows pos d_model"]:
        """One input per receiver: ``base_r + Σ_s mask[r, s]·(out_s − ablated_s)``."""
        n = receivers.stop - receivers.start
        if self.mask_grid is None:
            forked = hidden.unsqueeze(0).expand(n, *hidden.shape)
        else:
            forked = self._build(hidden, torch.arange(receivers.start, receivers.stop)).to(hidden.dtype)
        if self.on_grad is not None and forked.requires_grad:
            forked.register_hook(lambda grad, first=receivers.start: self.on_grad(first, grad))
        return forked

    def _distinct(self, receivers: slice) -> tuple[Tensor, Tensor]:
        """Receivers whose mask rows are equal (in every mask) read equal inputs: the
        attention copies needed, as (one receiver per copy, each receiver's copy). With
        a mask that needs gradients every receiver keeps its own copy."""
        every = torch.arange(receivers.start, receivers.stop)
        if self.mask_grid is None or self.mask_grid.requires_grad:
            return every, every - receivers.start
        rows = self.mask_grid[:, receivers].transpose(0, 1).flatten(1)
        _, copy_of = torch.unique(rows, dim=0, return_inverse=True)
        copy_of = copy_of.cpu()
        first = torch.full((int(copy_of.max()) + 1,), len(every)).scatter_reduce(
            0, copy_of, torch.arange(len(every)), "amin")
        return every[first], copy_of

    def _build(self, hidden: Tensor, receivers: Tensor) -> Float[Tensor, "receiver rows pos d_model"]:
        n = len(receivers)
        base = torch.zeros((), dtype=torch.float32, device=hidden.device)
        total = None
        start = 0
        for delta, group_base in zip(self.state.outputs, self.bases):
            senders = slice(start, start + delta.shape[0])
            start = senders.stop
            if not self.edge_grid[receivers, senders].any():
                continue  # this group feeds none of these receivers
            base = base + group_base.float()
            block = self.mask_grid[:, receivers, senders].to(delta)
            if not block.requires_grad and not block.any():
                continue
            part = _KeptEdges.apply(delta.unflatten(1, (self.masks, -1)), block)
            total = part if total is None else total + part
        base = base.expand(hidden.shape[0] // self.masks, *hidden.shape[1:])
        out = base.unsqueeze(0).unsqueeze(0).expand(n, self.masks, *base.shape)  # receiver mask batch pos d_model
        if total is not None:
            out = out + total
        return out.flatten(1, 2)

    def attn_input_hook(self, layer: int):
        def hook(module, args, kwargs):
            if not self.expand:
                return None
            receivers = self.layout.attn_receivers(layer)
            hidden = _main(args, kwargs)
            if self.mask_grid is not None and self.on_grad is None:
                picked, self.copy_of = self._distinct(receivers)
                forked = self._build(hidden, picked).to(hidden.dtype)
            else:
                forked = self._fork(hidden, receivers)
                self.copy_of = torch.arange(self.layout.copies)
            return _with_main(args, kwargs, forked.reshape(-1, *forked.shape[2:]))
        return hook

    def single_input_hook(self, layer: int | None):
        receiver = self.layout.logits_receiver if layer is None else self.layout.mlp_receiver(layer)

        def hook(module, args, kwargs):
            if not self.expand:
                return None
            return _with_main(args, kwargs, self._fork(_main(args, kwargs), slice(receiver, receiver + 1))[0])
        return hook

    def repeat_kwargs_hook(self, module, args, kwargs):
        """Repeat per-row arguments (rotary tables, masks) over the attention copies."""
        if not self.expand or self.rows <= 1:
            return None
        copies = int(self.copy_of.max()) + 1
        if copies == 1:
            return None
        return args[:1] + _repeat(args[1:], self.rows, copies), _repeat(kwargs, self.rows, copies)

    def assemble_hook(self, kind: str, tensor: Tensor) -> Tensor:
        """At hook_q/k/v: each head from its receiver's copy, the result given to every copy."""
        if not self.expand or kind not in ("attn.hook_q", "attn.hook_k", "attn.hook_v"):
            return tensor
        n_heads, n_kv = self.graph.n_heads, self.graph.n_kv_heads
        n_copies = int(self.copy_of.max()) + 1
        copies = tensor.unflatten(0, (n_copies, -1))  # copy rows pos head d_head
        heads = torch.arange(tensor.shape[2])
        offset = {"attn.hook_q": 0, "attn.hook_k": n_heads, "attn.hook_v": n_heads + n_kv}[kind]
        picked = copies[self.copy_of[offset + heads].to(tensor.device), :, :, heads.to(tensor.device)]
        assembled = picked.permute(1, 2, 0, 3)  # rows pos head d_head
        return assembled.unsqueeze(0).expand(n_copies, *assembled.shape).flatten(0, 1)

    def one_copy_hook(self, module, args, kwargs):
        """Before the output projection: every copy holds the same z now; keep one."""
        if not self.expand:
            return None
        return _with_main(args, kwargs, _main(args, kwargs)[: self.rows])


class _KeptEdges(torch.autograd.Function):
    """Σ_s mask[r, s]·delta_s for a block of receivers and senders.

    The same as an einsum, but autograd keeps only references to its two inputs (which
    live on anyway) instead of the reshaped copies einsum saves: with a mask that needs
    gradients, those copies, one per (receiver group, sender group), took 20 GB on
    smollm2-135m with 8 prompts.
    """

    @staticmethod
    def forward(ctx, delta: Tensor, block: Tensor) -> Tensor:
        ctx.save_for_backward(delta, block)
        return einsum(delta, block,
                      "sender mask batch pos d_model, mask receiver sender -> receiver mask batch pos d_model")

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        delta, block = ctx.saved_tensors
        grad_delta = grad_block = None
        if ctx.needs_input_grad[0]:
            grad_delta = einsum(grad, block,
                                "receiver mask batch pos d_model, mask receiver sender -> sender mask batch pos d_model")
        if ctx.needs_input_grad[1]:
            grad_block = einsum(delta, grad,
                                "sender mask batch pos d_model, receiver mask batch pos d_model -> mask receiver sender")
        return grad_delta, grad_block


# ---------------------------------------------------------------- plumbing
def _main(args: tuple, kwargs: dict) -> Tensor:
    return args[0] if args else kwargs.get("hidden_states", kwargs.get("input"))


def _with_main(args: tuple, kwargs: dict, new: Tensor) -> tuple[tuple, dict]:
    if args:
        return (new, *args[1:]), kwargs
    key = "hidden_states" if "hidden_states" in kwargs else "input"
    return args, {**kwargs, key: new}


def _main_out(output) -> Tensor:
    return output[0] if isinstance(output, tuple) else output


def _with_main_out(output, new: Tensor):
    return (new, *output[1:]) if isinstance(output, tuple) else new


def _repeat(value, rows: int, copies: int):
    if isinstance(value, dict):
        return {key: _repeat(item, rows, copies) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_repeat(item, rows, copies) for item in value)
    if isinstance(value, Tensor) and value.dim() >= 1 and value.shape[0] == rows:
        return value.repeat(copies, *([1] * (value.dim() - 1)))
    return value

