"""Where each hook point attaches to the Hugging Face module tree, and how.

A hook point is one of four kinds of *site*:

* a module's output (``hook_resid_post`` is a block's output, ``hook_logits`` the
  unembedding's), or a module's input (``hook_resid_pre``, ``mlp.hook_post``);
* a norm's scale, computed from the norm's input; replacing it rescales the output;
* a tensor inside attention (q, k, v, scores, pattern, z), reached through the attention
  function in :mod:`mechscope.hooks.attention`;
* a derived tensor: ``attn.hook_result`` (z split per head through W_O) and
  ``hook_resid_mid`` (resid_pre + attn_out), whose replacements are mapped back onto
  the tensor the model really uses.

:class:`Installation` puts one PyTorch hook on each module that needs any, running
that module's steps in forward order, and takes everything off again in ``remove``.
The model is never changed otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from einops import einsum
from torch import Tensor, nn

from mechscope.errors import HookPointError
from mechscope.hooks import attention
from mechscope.hooks.adapters import Adapter
from mechscope.hooks.points import HookPoint

HookFn = Callable[[Tensor, HookPoint], "Tensor | None"]
"""``fn(activation, hook) -> replacement or None``, as in TransformerLens."""

ATTENTION_KINDS = frozenset(
    {"attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z"}
)


@dataclass
class ActiveHooks:
    """Every hook in force, per point name, in the order they run."""

    fwd: dict[str, list[HookFn]] = field(default_factory=lambda: defaultdict(list))
    bwd: dict[str, list[HookFn]] = field(default_factory=lambda: defaultdict(list))
    graph: set[str] = field(default_factory=set)
    """Points whose hooked tensor must be the one the model computes with, so that
    autograd reaches it even when no hook replaces it (for gradients at hook points)."""

    def needs_graph(self, point: HookPoint) -> bool:
        return point.name in self.graph or bool(self.bwd.get(point.name))

    def run(self, point: HookPoint, tensor: Tensor) -> Tensor:
        """Pass ``tensor`` through the point's forward hooks; attach its backward hooks."""
        for fn in self.fwd.get(point.name, ()):
            out = fn(tensor, point)
            if out is None:
                continue
            if not isinstance(out, Tensor) or out.shape != tensor.shape:
                got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                raise HookPointError(
                    f"hook {getattr(fn, '__name__', fn)!r} on {point.name} returned {got}; a hook must "
                    f"return None or a tensor of the same shape {tuple(tensor.shape)} ({' '.join(point.dims)})"
                )
            tensor = out.to(device=tensor.device, dtype=tensor.dtype)
        if tensor.requires_grad:
            for fn in self.bwd.get(point.name, ()):
                tensor.register_hook(partial(_backward_hook, fn, point))
        return tensor


def _backward_hook(fn: HookFn, point: HookPoint, grad: Tensor) -> Tensor | None:
    return fn(grad, point)


# ------------------------------------------------------------ module plumbing
def _main_input(args: tuple, kwargs: dict) -> Tensor:
    if args:
        return args[0]
    for key in ("hidden_states", "x", "input"):
        if key in kwargs:
            return kwargs[key]
    raise HookPointError(f"cannot find the input tensor among keyword arguments {sorted(kwargs)}")


def _with_main_input(args: tuple, kwargs: dict, new: Tensor) -> tuple[tuple, dict]:
    if args:
        return (new, *args[1:]), kwargs
    for key in ("hidden_states", "x", "input"):
        if key in kwargs:
            return args, {**kwargs, key: new}
    raise HookPointError(f"cannot find the input tensor among keyword arguments {sorted(kwargs)}")


def _main_output(output) -> Tensor:
    return output[0] if isinstance(output, tuple) else output


def _with_main_output(output, new: Tensor):
    return (new, *output[1:]) if isinstance(output, tuple) else new


# Points that are a module's output or input, by kind: (adapter, layer) -> module.
_OUTPUT_OF: dict[str, Callable[[Adapter, int | None], nn.Module]] = {
    "hook_embed": lambda a, layer: a.module(a.embed_path),
    "hook_pos_embed": lambda a, layer: a.module(a.pos_embed_path),
    "hook_attn_out": lambda a, layer: a.attn_out_module(layer),
    "mlp.hook_pre": lambda a, layer: a.in_block(layer, a.mlp_in_path),
    "mlp.hook_pre_linear": lambda a, layer: a.in_block(layer, a.mlp_in_linear_path),
    "hook_mlp_out": lambda a, layer: a.mlp_out_module(layer),
    "hook_resid_post": lambda a, layer: a.block(layer),
    "hook_logits": lambda a, layer: a.module(a.unembed_path),
}
_INPUT_OF: dict[str, Callable[[Adapter, int | None], nn.Module]] = {
    "hook_resid_pre": lambda a, layer: a.block(layer),
    "mlp.hook_post": lambda a, layer: a.in_block(layer, a.mlp_out_proj_path),
}

PreStep = Callable[[tuple, dict], tuple[tuple, dict]]
PostStep = Callable[[tuple, dict, object], object]


class Installation:
    """The PyTorch hooks and attention sites that realise one set of active hooks."""

    def __init__(
        self,
        adapter: Adapter,
        points: dict[str, HookPoint],
        active: ActiveHooks,
        eager: bool,
        prefixes: dict[int, tuple[Tensor, Tensor]] | None = None,
    ):
        """``prefixes`` (even empty) routes attention through mechscope's function, whose
        masks are SDPA's format, as in runs recorded with attention hooks."""
        self.adapter = adapter
        self.active = active
        self._handles: list = []
        self._pre: dict[nn.Module, list[PreStep]] = defaultdict(list)
        self._post: dict[nn.Module, list[PostStep]] = defaultdict(list)
        self._stash: dict[int, Tensor] = {}
        self._attention = None
        """The attention_sites context while entered (see _enter_attention)."""
        hooked = [points[name] for name in points if name in active.fwd or name in active.bwd or name in active.graph]
        attention_layers: dict[int, set[str]] = defaultdict(set)
        for point in hooked:
            if point.kind in ATTENTION_KINDS:
                attention_layers[point.layer].add(point.kind)
            else:
                self._plan(point)
        try:
            self._register()
            if attention_layers or prefixes is not None:
                self._enter_attention(attention_layers, points, eager, prefixes or {})
        except BaseException:
            self.remove()
            raise

    # ------------------------------------------------------------------ plan
    def _plan(self, point: HookPoint) -> None:
        a, layer, kind = self.adapter, point.layer, point.kind
        if kind in _OUTPUT_OF:
            self._output(_OUTPUT_OF[kind](a, layer), point)
        elif kind in _INPUT_OF:
            self._input(_INPUT_OF[kind](a, layer), point)
        elif kind.endswith("hook_scale"):
            norm = a.norm(layer, kind.split(".")[0])
            self._post[norm].append(partial(self._scale_step, point, norm))
        elif kind.endswith("hook_normalized"):
            self._output(a.norm(layer, kind.split(".")[0]), point)
        elif kind == "attn.hook_result":
            self._post[a.in_block(layer, a.out_proj_path)].append(partial(self._result_step, point))
        elif kind == "hook_resid_mid":
            self._pre[a.block(layer)].append(partial(self._stash_step, layer))
            self._post[a.attn_out_module(layer)].append(partial(self._resid_mid_step, point))
        else:  # pragma: no cover - every kind in KIND_DIMS is handled
            raise HookPointError(f"no site for hook kind {kind!r}")

    def _output(self, module: nn.Module, point: HookPoint) -> None:
        def step(args, kwargs, output):
            tensor = _main_output(output)
            new = self.active.run(point, tensor)
            return output if new is tensor else _with_main_output(output, new)

        self._post[module].append(step)

    def _input(self, module: nn.Module, point: HookPoint) -> None:
        def step(args, kwargs):
            tensor = _main_input(args, kwargs)
            new = self.active.run(point, tensor)
            return (args, kwargs) if new is tensor else _with_main_input(args, kwargs, new)

        self._pre[module].append(step)

    # ----------------------------------------------------------------- steps
    def _scale_step(self, point: HookPoint, norm: nn.Module, args, kwargs, output):
        """Norm scale: sqrt(mean(x²) + eps) for RMSNorm, sqrt(var(x) + eps) for LayerNorm.

        Replacing the scale rescales the normalised output: out' = (out - b)·s/s' + b.
        """
        x = _main_input(args, kwargs)
        x = x.to(torch.promote_types(x.dtype, torch.float32))  # norms compute in float32 at least
        eps = self.adapter.norm_eps(norm)
        if self.adapter.normalization == "layernorm":
            scale = (x.var(-1, keepdim=True, unbiased=False) + eps).sqrt()
        else:
            scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
        scale = scale.detach()
        graph = self.active.needs_graph(point) and torch.is_grad_enabled()
        hooked_in = scale.clone().requires_grad_(True) if graph else scale
        new = self.active.run(point, hooked_in)
        if new is hooked_in and not graph:
            return output
        out = _main_output(output)
        bias = self.adapter.norm_bias(norm)
        shifted = out.to(scale.dtype) if bias is None else out.to(scale.dtype) - bias.to(scale.dtype)
        rescaled = shifted * (scale / new)
        if bias is not None:
            rescaled = rescaled + bias.to(scale.dtype)
        return _with_main_output(output, rescaled.to(out.dtype))

    def _result_step(self, point: HookPoint, args, kwargs, output):
        """Per-head output: z[h] @ W_O[h]; the projection's output becomes their sum + b_O."""
        z_flat = _main_input(args, kwargs)
        w_o = self.adapter.W_O(point.layer)
        z = z_flat.reshape(*z_flat.shape[:-1], w_o.shape[0], w_o.shape[1])
        result = einsum(z, w_o, "batch pos head d_head, head d_head d_model -> batch pos head d_model")
        new = self.active.run(point, result)
        if new is result and not self.active.needs_graph(point):
            return output  # only read: keep the projection's own output bit for bit
        summed = new.sum(-2)
        bias = self.adapter.b_O(point.layer)
        if bias is not None:
            summed = summed + bias
        return _with_main_output(output, summed.to(_main_output(output).dtype))

    def _stash_step(self, layer: int, args, kwargs):
        self._stash[layer] = _main_input(args, kwargs)
        return args, kwargs

    def _resid_mid_step(self, point: HookPoint, args, kwargs, output):
        """resid_mid = resid_pre + attn_out; a replacement becomes attn_out' = mid' - resid_pre."""
        resid_pre = self._stash.pop(point.layer)
        attn_out = _main_output(output)
        mid = resid_pre + attn_out
        new = self.active.run(point, mid)
        if new is mid and not self.active.needs_graph(point):
            return output
        return _with_main_output(output, new - resid_pre)

    # ----------------------------------------------------------- attention
    def _enter_attention(
        self,
        layers: dict[int, set[str]],
        points: dict[str, HookPoint],
        eager: bool,
        prefixes: dict[int, tuple[Tensor, Tensor]],
    ) -> None:
        sites = {}
        for layer in range(self.adapter.n_layers):
            run = None
            if layer in layers:
                by_kind = {kind: points[f"blocks.{layer}.{kind}"] for kind in layers[layer]}
                run = partial(self._run_attention, by_kind)
            sites[layer] = attention.AttentionSite(run=run, eager=eager, prefix=prefixes.get(layer))
        # entered here, exited in remove(): the installer's own lifetime is a context manager's
        self._attention = attention.attention_sites(self.adapter, sites)
        self._attention.__enter__()

    def _run_attention(self, by_kind: dict[str, HookPoint], kind: str, tensor: Tensor) -> Tensor:
        point = by_kind.get(kind)
        return tensor if point is None else self.active.run(point, tensor)

    # -------------------------------------------------------- (un)register
    def _register(self) -> None:
        for module, steps in self._pre.items():
            self._handles.append(module.register_forward_pre_hook(_chain_pre(steps), with_kwargs=True))
        for module, steps in self._post.items():
            self._handles.append(module.register_forward_hook(_chain_post(steps), with_kwargs=True))

    def remove(self) -> None:
        """Take every hook off and restore the attention implementation. Idempotent."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._stash.clear()
        if self._attention is not None:
            self._attention.__exit__(None, None, None)
            self._attention = None


def _chain_pre(steps: list[PreStep]):
    def hook(module, args, kwargs):
        for step in steps:
            args, kwargs = step(args, kwargs)
        return args, kwargs

    return hook


def _chain_post(steps: list[PostStep]):
    def hook(module, args, kwargs, output):
        for step in steps:
            output = step(args, kwargs, output)
        return output

    return hook
