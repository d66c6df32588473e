"""HookedModel: an unmodified Hugging Face causal LM with canonical hook points.

Reading and replacing activations takes no rewritten model: hooks go on the HF modules
(and into an attention function registered with transformers) only inside a context,
and come off in ``finally``::

    model = mechscope.load_model("smollm2-135m")
    logits, cache = model.run_with_cache("The Eiffel Tower is in", names="blocks.*.hook_resid_post")

    def kill_head(z, hook):              # z: batch pos head d_head
        z[:, :, 3] = 0
        return z

    with model.hooks(fwd=[("blocks.5.attn.hook_z", kill_head)]):
        ablated = model("The Eiffel Tower is in")

Hook functions take ``(tensor, hook)`` as in TransformerLens; returning a tensor replaces
the activation, returning None leaves it. ``model.hf_model`` and ``model.tokenizer`` are
the wrapped objects themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechscope.errors import HookPointError, InputError
from mechscope.hooks.activation_cache import ActivationCache, select_positions
from mechscope.hooks.adapters import adapter_for
from mechscope.hooks.points import ON_REQUEST_KINDS, HookPoint, build_points, resolve
from mechscope.hooks.sites import ActiveHooks, HookFn, Installation
from mechscope.hooks.tokens import TokenBatch, tokenize

ModelInput = str | Sequence[str] | Tensor | TokenBatch
"""A prompt, a list of prompts, token ids (pos) or (batch pos), or a TokenBatch."""
HookList = Sequence[tuple[str, HookFn]]
"""``[(name_or_glob, fn), ...]``."""
Positions = int | slice | Sequence[int] | None


class HookedModel:
    """A Hugging Face causal language model with TransformerLens-style hook points."""

    def __init__(self, hf_model: torch.nn.Module, tokenizer, *, name: str | None = None) -> None:
        self.hf_model = hf_model
        """The wrapped ``*ForCausalLM``; mechscope never changes its modules or weights."""
        self.tokenizer = tokenizer
        """The wrapped tokenizer."""
        self.name = name or getattr(hf_model.config, "_name_or_path", "") or type(hf_model).__name__
        """How the model was asked for (``smollm2-135m``, a path, a hub id)."""
        self.adapter = adapter_for(hf_model)
        """Module paths and weight layouts of this model's family."""
        self.cfg = self.adapter.summary()
        """Architecture summary (n_layers, d_model, n_heads, …)."""
        self._points = build_points(self.cfg.n_layers, self.adapter.kinds())
        self._contexts: list[tuple[list, list, set, dict]] = []  # one entry per open hooks context
        self._installation: Installation | None = None

    def __repr__(self) -> str:
        c = self.cfg
        return (
            f"HookedModel({self.name!r}, family={c.family}, n_layers={c.n_layers}, d_model={c.d_model}, "
            f"n_heads={c.n_heads}, n_kv_heads={c.n_kv_heads})"
        )

    @property
    def device(self) -> torch.device:
        return next(self.hf_model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.hf_model.parameters()).dtype

    # -------------------------------------------------------------- hook points
    def hook_names(self, pattern: str | None = None) -> list[str]:
        """Every hook point name in forward order, or those a glob selects."""
        if pattern is None:
            return list(self._points)
        return [point.name for point in self._resolve_names(pattern)]

    def hook_point(self, name: str) -> HookPoint:
        """The :class:`HookPoint` called ``name`` (its layer, kind and dimension names)."""
        points = self._resolve_names([name])
        if len(points) != 1:
            raise HookPointError(f"expected one exact hook name; {name!r} matches {len(points)} points")
        return points[0]

    def _resolve_names(self, names: str | Sequence[str]) -> list[HookPoint]:
        return resolve(names, self._points, missing_reason=self.adapter.missing_reasons())

    def _resolve_hooks(self, hooks: HookList, role: str) -> list[tuple[HookPoint, HookFn]]:
        resolved = []
        for item in hooks:
            if not (isinstance(item, tuple) and len(item) == 2 and callable(item[1])):
                raise HookPointError(
                    f"{role} hooks must be (name_or_glob, fn) pairs; received {item!r}. "
                    f"Example: {role}=[('blocks.0.hook_resid_pre', fn)]"
                )
            resolved += [(point, item[1]) for point in self._resolve_names(item[0])]
        return resolved

    # -------------------------------------------------------------------- hooks
    @contextmanager
    def hooks(self, fwd: HookList = (), bwd: HookList = ()) -> Iterator[HookedModel]:
        """Attach forward hooks (``fn(activation, hook)``) and backward hooks
        (``fn(gradient, hook)``) for the duration of the block. Contexts nest; hooks on
        one point run outer first. Everything is removed on exit, also after an error.

        A replacement tensor must have the activation's shape; it is moved to the
        activation's device and dtype (so a cache kept on the CPU can patch a GPU model).
        Backward hooks fire in whatever backward pass runs inside the block, also when
        no parameter requires grad (the embeddings are then made leaves)."""
        leaves = self._leaf_hooks() if bwd else []
        with self._hooks([*leaves, *fwd], bwd, ()):
            yield self

    def _leaf_hooks(self) -> list[tuple[str, HookFn]]:
        return [(name, _make_leaf) for name in ("hook_embed", "hook_pos_embed") if name in self._points]

    @contextmanager
    def _hooks(
        self,
        fwd: HookList,
        bwd: HookList,
        graph: Sequence[str],
        prefixes: dict[int, tuple[Tensor, Tensor]] | None = None,
    ) -> Iterator[None]:
        """``hooks`` plus two internal needs: ``graph`` points must stay in the autograd
        graph, and ``prefixes`` give layers keys/values of earlier positions (replay; a
        dict, even empty, runs attention through mechscope's function)."""
        context = (self._resolve_hooks(fwd, "fwd"), self._resolve_hooks(bwd, "bwd"), set(graph), prefixes)
        self._contexts.append(context)
        try:
            self._reinstall()
            yield
        finally:
            del self._contexts[next(i for i, entry in enumerate(self._contexts) if entry is context)]
            self._reinstall()

    def _reinstall(self) -> None:
        if self._installation is not None:
            self._installation.remove()
            self._installation = None
        if not self._contexts:
            return
        active = ActiveHooks()
        prefixes: dict[int, tuple[Tensor, Tensor]] | None = None
        for fwd, bwd, graph, prefix in self._contexts:
            for point, fn in fwd:
                active.fwd[point.name].append(fn)
            for point, fn in bwd:
                active.bwd[point.name].append(fn)
            active.graph |= graph
            if prefix is not None:
                prefixes = {**(prefixes or {}), **prefix}
        eager = self.hf_model.config._attn_implementation == "eager"
        self._installation = Installation(self.adapter, self._points, active, eager=eager, prefixes=prefixes)

    # ------------------------------------------------------------------ running
    def forward(self, input: ModelInput, *, attention_mask: Tensor | None = None) -> Float[Tensor, "batch pos d_vocab"]:
        """Logits for ``input``, through whatever hooks are active."""
        batch = self.to_batch(input, attention_mask=attention_mask)
        out = self.hf_model(
            input_ids=batch.ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids() if batch.has_padding else None,
            use_cache=False,
        )
        return out.logits

    __call__ = forward

    def run_with_hooks(
        self, input: ModelInput, *, fwd: HookList = (), bwd: HookList = (), attention_mask: Tensor | None = None
    ) -> Float[Tensor, "batch pos d_vocab"]:
        """``forward`` with hooks attached for this one call."""
        with self.hooks(fwd=fwd, bwd=bwd):
            return self.forward(input, attention_mask=attention_mask)

    def run_with_cache(
        self,
        input: ModelInput,
        *,
        names: str | Sequence[str] | Callable[[str], bool] | None = None,
        positions: Positions = None,
        device: torch.device | str | None = None,
        grad_metric: Callable[[Tensor], Tensor] | None = None,
        attention_mask: Tensor | None = None,
    ) -> tuple[Float[Tensor, "batch pos d_vocab"], ActivationCache]:
        """Run the model and keep activations.

        Args:
            names: hook names or globs to keep, or a predicate on names (TransformerLens'
                ``names_filter``); None keeps every point. ``attn.hook_result`` is kept
                only when named or globbed explicitly (see :func:`points.resolve`).
            positions: keep only these (query) positions, to save memory.
            device: where to keep activations (e.g. ``"cpu"`` while the model is on GPU).
            grad_metric: ``metric(logits) -> scalar``; if given, also keep the gradient of
                the metric at every kept point in ``cache.grads`` (no parameter gradients
                are computed).
        """
        batch = self.to_batch(input, attention_mask=attention_mask)
        if names is None:
            points = [p for p in self._points.values() if p.kind not in ON_REQUEST_KINDS]
        elif callable(names):
            points = [p for p in self._points.values() if p.kind not in ON_REQUEST_KINDS and names(p.name)]
        else:
            points = self._resolve_names(names)
        acts: dict[str, Tensor] = {}
        attached: dict[str, Tensor] = {}
        # With other hooks active, one of them may edit in place a tensor already kept, or
        # an alias of it (the next block's resid_pre is this block's resid_post): keep
        # copies then. transformers itself never edits activations in place.
        copy = bool(self._contexts)

        def keep(tensor: Tensor, hook: HookPoint) -> Tensor | None:
            kept = select_positions(tensor.detach(), positions, hook.pos_dim)
            acts[hook.name] = kept.to(device or tensor.device, copy=copy and kept.data_ptr() == tensor.data_ptr())
            if grad_metric is None:
                return None
            if not tensor.requires_grad:  # an outer hook patched in a constant
                tensor = tensor.detach().requires_grad_(True)
            attached[hook.name] = tensor
            return tensor

        fwd = [(p.name, keep) for p in points]
        if grad_metric is None:
            with torch.no_grad(), self._hooks(fwd, (), ()):
                logits = self.forward(batch)
            return logits, ActivationCache(self, acts, {}, batch, positions)

        with torch.enable_grad(), self._hooks(self._leaf_hooks() + fwd, (), [p.name for p in points]):
            logits = self.forward(batch)
            metric = grad_metric(logits)
        if not isinstance(metric, Tensor) or metric.numel() != 1:
            shape = tuple(metric.shape) if isinstance(metric, Tensor) else type(metric).__name__
            raise InputError(f"grad_metric must return a scalar tensor; it returned {shape}")
        wanted = list(attached)
        found = torch.autograd.grad(metric.reshape(()), [attached[n] for n in wanted], allow_unused=True)
        grads = {}
        for name, grad in zip(wanted, found):
            grad = torch.zeros_like(attached[name]) if grad is None else grad
            grads[name] = select_positions(grad, positions, self._points[name].pos_dim).to(device or grad.device)
        return logits.detach(), ActivationCache(self, acts, grads, batch, positions)

    # ------------------------------------------------------------- tokenizing
    def tokenize(
        self, text: str | Sequence[str], *, prepend_bos: bool | None = None, padding_side: str = "right"
    ) -> TokenBatch:
        """Prompts → padded ids plus attention mask (see :mod:`mechscope.hooks.tokens`)."""
        return tokenize(self.tokenizer, text, prepend_bos=prepend_bos, padding_side=padding_side).to(self.device)

    def to_tokens(
        self, text: str | Sequence[str], *, prepend_bos: bool | None = None, padding_side: str = "right"
    ) -> Int[Tensor, "batch pos"]:
        """Prompts → token ids (batch pos), padded; use ``tokenize`` to keep the mask."""
        return self.tokenize(text, prepend_bos=prepend_bos, padding_side=padding_side).ids

    def to_str_tokens(self, input: str | Sequence[str] | Tensor) -> list[str] | list[list[str]]:
        """Each token as text: a list for one prompt or 1-d ids, a list of lists otherwise."""
        if isinstance(input, str):
            return self.to_str_tokens(self.to_tokens(input)[0])
        if isinstance(input, Tensor):
            if input.dim() == 1:
                return [self.tokenizer.decode([int(t)]) for t in input]
            return [self.to_str_tokens(row) for row in input]
        return [self.to_str_tokens(text) for text in input]

    def to_string(self, tokens: Tensor | Sequence[int]) -> str | list[str]:
        """Token ids → text: one string for 1-d ids, a list for (batch pos)."""
        tokens = torch.as_tensor(tokens)
        if tokens.dim() == 1:
            return self.tokenizer.decode(tokens.tolist())
        return [self.tokenizer.decode(row.tolist()) for row in tokens]

    def to_batch(self, input: ModelInput, *, attention_mask: Tensor | None = None) -> TokenBatch:
        """Any accepted input as a :class:`TokenBatch` on the model's device, checked."""
        if attention_mask is not None and not isinstance(input, Tensor):
            raise InputError(
                "attention_mask goes with token ids only; prompts are tokenized with their own mask, "
                "and a TokenBatch carries one"
            )
        if isinstance(input, TokenBatch):
            batch = input.to(self.device)
        elif isinstance(input, str) or (isinstance(input, Sequence) and not isinstance(input, Tensor)):
            batch = self.tokenize(input)
        elif isinstance(input, Tensor):
            ids = input.unsqueeze(0) if input.dim() == 1 else input
            if ids.dim() != 2 or ids.dtype not in (torch.long, torch.int32, torch.int16, torch.uint8):
                raise InputError(
                    f"token ids must be an integer tensor of shape (pos) or (batch pos); "
                    f"received {ids.dtype} {tuple(input.shape)}"
                )
            if attention_mask is None:
                attention_mask = torch.ones_like(ids)
            elif attention_mask.numel() != ids.numel():
                raise InputError(
                    f"attention_mask must match the ids' shape {tuple(ids.shape)}; received {tuple(attention_mask.shape)}"
                )
            batch = TokenBatch(ids.long(), attention_mask.reshape(ids.shape).long()).to(self.device)
        else:
            raise InputError(
                f"expected a prompt, a list of prompts, token ids or a TokenBatch; received {type(input).__name__}"
            )
        n_pos = batch.ids.shape[1]
        if n_pos == 0:
            raise InputError("the input has no tokens; give a non-empty prompt")
        if n_pos > self.cfg.n_ctx:
            raise InputError(
                f"the input has {n_pos} tokens but {self.name} takes at most {self.cfg.n_ctx}; shorten the prompt"
            )
        if batch.ids.min() < 0 or batch.ids.max() >= self.cfg.d_vocab:
            raise InputError(f"token ids must lie in [0, {self.cfg.d_vocab}); received {batch.ids.min()}..{batch.ids.max()}")
        return batch

    # ---------------------------------------------------------------- weights
    def _stack(self, weight: Callable[[int], Tensor]) -> Tensor:
        return torch.stack([weight(layer) for layer in range(self.cfg.n_layers)])

    @property
    def W_E(self) -> Float[Tensor, "d_vocab d_model"]:
        """Token embedding: row ``t`` is ``hook_embed`` for token ``t``."""
        return self.adapter.W_E

    @property
    def W_pos(self) -> Float[Tensor, "n_ctx d_model"]:
        return self.adapter.W_pos

    @property
    def W_U(self) -> Float[Tensor, "d_model d_vocab"]:
        """Unembedding; it reads the final norm's output (no norm weights are folded in)."""
        return self.adapter.W_U

    @property
    def b_U(self) -> Float[Tensor, "d_vocab"] | None:
        return self.adapter.b_U

    @property
    def W_Q(self) -> Float[Tensor, "layer head d_model d_head"]:
        return self._stack(self.adapter.W_Q)

    @property
    def W_K(self) -> Float[Tensor, "layer kv_head d_model d_head"]:
        return self._stack(self.adapter.W_K)

    @property
    def W_V(self) -> Float[Tensor, "layer kv_head d_model d_head"]:
        return self._stack(self.adapter.W_V)

    @property
    def W_O(self) -> Float[Tensor, "layer head d_head d_model"]:
        return self._stack(self.adapter.W_O)

    @property
    def W_in(self) -> Float[Tensor, "layer d_model d_mlp"]:
        return self._stack(self.adapter.W_in)

    @property
    def W_out(self) -> Float[Tensor, "layer d_mlp d_model"]:
        return self._stack(self.adapter.W_out)


def _make_leaf(tensor: Tensor, hook: HookPoint) -> Tensor | None:
    """Let gradients reach hook points even when no parameter requires grad."""
    return None if tensor.requires_grad else tensor.detach().requires_grad_(True)
