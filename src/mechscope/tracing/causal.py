"""Causal tracing (Meng et al. 2022): which hidden states carry a fact from the subject?

::

    fact = Fact(known_id=0, prompt="The Eiffel Tower is located in the city of",
                subject="Eiffel Tower", attribute="Paris")
    trace = causal_trace(model, fact)          # TraceConfig(noise=3.0, samples=10, window=10)
    trace.plot().savefig("eiffel.png")         # token × layer, for hidden / mlp / attn
    trace.effects[trace.kinds.index("mlp")]    # layer × pos indirect effects

The subject's token embeddings get Gaussian noise (``samples`` seeded draws); then one
clean state at a time is restored into the noised run: a layer's output at one token
(``hidden``), or the MLP or attention outputs of a window of layers at one token. The
score is p(answer) at the last token, averaged over the noise samples.

**Fast path.** The noised run is made once and cached. Restorations at the same token
run together as one batch, a copy of the noised samples per cell (all kinds at once),
each copy joining the batch at the first block it needs. Nothing before the restored
token changes, so each copy starts at that token, earlier positions' keys and values
coming from the cache; a restored MLP or attention window starts at its first layer, a
restored layer output l is the residual block l+1 starts from (the last layer's output
matters only at the last token, where it gives the clean run). Restoring a token before
the subject restores what is already there, so those cells take the corrupted score.
Only the last position's logits are computed (:mod:`mechscope.hooks.replay`).
:func:`causal_trace_reference` is the paper's algorithm, one full forward of the clean
and noised rows per cell; the tests hold the two equal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from mechscope.facts.dataset import Fact, attribute_token
from mechscope.facts.tokens import subject_span
from mechscope.hooks.replay import record_block_inputs, replay_names, run_staggered
from mechscope.hooks.tokens import TokenBatch
from mechscope.tracing.config import KINDS, TOKEN_SETS, TraceConfig
from mechscope.tracing.result import CausalTrace


RESIDUAL = "hook_resid_post"
"""A restored layer output is simply the residual the next block starts from."""


@dataclass(frozen=True)
class _Setup:
    """A fact prepared for tracing."""

    batch: TokenBatch
    span: range
    answer: int
    noise: Tensor  # samples, subject tokens, d_model
    std: float


def embedding_std(model, facts: Sequence[Fact]) -> float:
    """Standard deviation of the token embeddings of the facts' subjects (the paper's noise unit)."""
    rows = []
    for fact in facts:
        ids = model.to_tokens(fact.prompt)[0]
        rows.append(model.W_E[ids[list(subject_span(model, fact.prompt, fact.subject))]])
    return float(torch.cat(rows).detach().float().std())


def _setup(model, fact: Fact, config: TraceConfig, noise_std: float | None) -> _Setup:
    batch = model.tokenize(fact.prompt)
    span = subject_span(model, fact.prompt, fact.subject)
    if noise_std is None:
        noise_std = config.noise_std if config.noise_std is not None else config.noise * embedding_std(model, [fact])
    generator = torch.Generator().manual_seed(config.seed)
    noise = torch.randn(config.samples, len(span), model.cfg.d_model, generator=generator) * noise_std
    return _Setup(batch, span, attribute_token(model, fact.attribute), noise.to(model.device, model.dtype), noise_std)


def _noising(setup: _Setup, first_row: int):
    """A hook_embed hook adding the noise to the subject's embeddings of rows ``first_row`` on."""
    def hook(embed: Tensor, point) -> Tensor:
        embed = embed.clone()
        embed[first_row:, setup.span.start : setup.span.stop] += setup.noise
        return embed

    return hook


def _names(model, config: TraceConfig) -> list[str]:
    return [f"blocks.{layer}.{KINDS[kind].hook}" for kind in config.kinds for layer in range(model.cfg.n_layers)]


@torch.no_grad()
def causal_trace(model, fact: Fact, *, config: TraceConfig = TraceConfig(),
                 noise_std: float | None = None) -> CausalTrace:
    """Trace one fact, fast (see the module docstring). ``noise_std`` overrides the config's."""
    setup = _setup(model, fact, config, noise_std)
    n_layers, n_pos, samples = model.cfg.n_layers, setup.batch.ids.shape[1], config.samples
    clean_logits, clean = model.run_with_cache(setup.batch, names=_names(model, config))
    noised = TokenBatch(setup.batch.ids.repeat(samples, 1), setup.batch.attention_mask.repeat(samples, 1))
    with model.hooks(fwd=[("hook_embed", _noising(setup, 0))]), record_block_inputs(model) as inputs:
        logits, cache = model.run_with_cache(noised, names=replay_names(model))
    low = float(logits[:, -1].float().softmax(-1)[:, setup.answer].mean())
    scores = torch.full((len(config.kinds), n_layers, n_pos), float("nan"))
    traced = list(TOKEN_SETS[config.tokens](setup.span, n_pos))
    scores[:, :, [t for t in traced if t < setup.span.start]] = low
    high = float(clean_logits[0, -1].float().softmax(-1)[setup.answer])
    for k, kind in enumerate(config.kinds):  # the last layer's output reaches the answer only at the last token
        if KINDS[kind].hook == RESIDUAL:
            scores[k, n_layers - 1, traced] = low
            scores[k, n_layers - 1, [t for t in traced if t == n_pos - 1]] = high
    readout = torch.full((samples,), n_pos - 1)
    per_run = max(1, config.max_rows // samples)
    for start, cells in _groups(model, config, setup.span, n_pos).items():
        for chunk in (cells[i : i + per_run] for i in range(0, len(cells), per_run)):
            resids = []
            for cell in chunk:
                resid = cache["resid_pre", cell.first][:, start:].clone()
                if cell.resid is not None:  # a restored layer output is the next block's input
                    resid[:, 0] = clean[cell.resid][0, start]
                resids.append(resid)
            out = run_staggered(model, inputs, cache, layers=[cell.first for cell in chunk], resids=resids,
                                start=start, readout=readout, fwd=_restorers(clean, chunk, start, samples))
            probs = out.float().softmax(-1)[:, setup.answer].view(len(chunk), samples).mean(1).cpu()
            for cell, p in zip(chunk, probs):
                scores[cell.kind, cell.layer, cell.token] = p
    return _result(model, fact, config, setup, scores, low, high)


class Cell(NamedTuple):
    """One restoration: which state, at which layer and token, and how it is written."""

    kind: int
    layer: int
    token: int
    first: int
    """The first block its run needs."""
    hooks: tuple[str, ...]
    """Hook points whose clean value is written at the token (a window of MLP/attention outputs)."""
    resid: str | None
    """A layer output restored by starting the next block from it (``hidden``)."""


def _groups(model, config: TraceConfig, span: range, n_pos: int) -> dict[int, list[Cell]]:
    """Cells by the first position to run, each list in the order of the first block its run
    needs. A restoration at token t changes nothing before t, so each run starts at its
    token; a restored MLP or attention window starts at its first layer, a restored layer
    output l is the residual block l+1 starts from. The last layer's output needs no run
    (see the caller). Cells of one token share a batch, each joining at its own block
    (:func:`~mechscope.hooks.replay.run_staggered`): one restoration alone is a batch of a
    few rows, too thin for the matrix products to run at speed."""
    n_layers = model.cfg.n_layers
    groups: dict[int, list[Cell]] = defaultdict(list)
    for k, kind in enumerate(config.kinds):
        for layer in range(n_layers):
            window = config.layers_of(kind, layer, n_layers)
            for token in [t for t in TOKEN_SETS[config.tokens](span, n_pos) if t >= span.start]:
                if KINDS[kind].hook != RESIDUAL:
                    names = tuple(f"blocks.{w}.{KINDS[kind].hook}" for w in window)
                    groups[token].append(Cell(k, layer, token, window.start, names, None))
                elif layer < n_layers - 1:
                    groups[token].append(Cell(k, layer, token, layer + 1, (), f"blocks.{layer}.{KINDS[kind].hook}"))
    return {token: sorted(cells, key=lambda cell: cell.first) for token, cells in groups.items()}


def _restorers(clean, cells: list[Cell], start: int, samples: int) -> list[tuple[str, Callable]]:
    """Hooks writing, in copy ``c`` (rows of the noised samples), the clean value of its cell's
    token at every hook point its cell restores."""
    targets: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for copy, cell in enumerate(cells):
        for name in cell.hooks:
            targets[name].append((copy, cell.token))

    def hook(tensor: Tensor, point) -> Tensor:
        tensor = tensor.clone()
        for copy, token in targets[point.name]:
            tensor[copy * samples : (copy + 1) * samples, token - start] = clean[point.name][0, token]
        return tensor

    return [(name, hook) for name in targets]


@torch.no_grad()
def causal_trace_reference(model, fact: Fact, *, config: TraceConfig = TraceConfig(),
                           noise_std: float | None = None) -> CausalTrace:
    """The paper's algorithm: one forward of the clean row and the noised rows per (kind, layer,
    token), the restored rows copying the clean row's state."""
    setup = _setup(model, fact, config, noise_std)
    n_layers, n_pos, rows = model.cfg.n_layers, setup.batch.ids.shape[1], config.samples + 1
    batch = TokenBatch(setup.batch.ids.repeat(rows, 1), setup.batch.attention_mask.repeat(rows, 1))
    noise = ("hook_embed", _noising(setup, 1))
    scores = torch.full((len(config.kinds), n_layers, n_pos), float("nan"))
    for k, kind in enumerate(config.kinds):
        for layer in range(n_layers):
            for token in TOKEN_SETS[config.tokens](setup.span, n_pos):
                restore = _from_row_zero(token)
                names = [(f"blocks.{w}.{KINDS[kind].hook}", restore) for w in config.layers_of(kind, layer, n_layers)]
                logits = model.run_with_hooks(batch, fwd=[noise, *names])
                scores[k, layer, token] = float(logits[1:, -1].float().softmax(-1)[:, setup.answer].mean())
    logits = model.run_with_hooks(batch, fwd=[noise])
    probs = logits[:, -1].float().softmax(-1)[:, setup.answer]
    return _result(model, fact, config, setup, scores, float(probs[1:].mean()), float(probs[0]))


def _from_row_zero(token: int):
    def hook(tensor: Tensor, point) -> Tensor:
        tensor = tensor.clone()
        tensor[1:, token] = tensor[0, token]
        return tensor

    return hook


def _result(model, fact: Fact, config: TraceConfig, setup: _Setup, scores: Tensor, low: float,
            high: float) -> CausalTrace:
    return CausalTrace(
        prompt=fact.prompt, subject=fact.subject, answer=model.tokenizer.decode([setup.answer]),
        tokens=tuple(model.to_str_tokens(setup.batch.ids[0])), subject_range=(setup.span.start, setup.span.stop - 1),
        kinds=config.kinds, scores=scores, low=low, high=high, window=config.window, noise_std=setup.std,
    )
