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

**Fast path.** The noised run is made once and cached. Restorations that start at the
same layer and token run together as one batch, a copy of the noised samples per cell
(for all three kinds at once): each copy starts at its window's first layer from the
cached residual, and at its token (the subject's tokens share the subject's first
token), earlier positions' keys and values coming from the cache, since nothing before
the restored token changes; restoring a token before the subject restores what is
already there, so those cells take the corrupted score; only the last position's logits
are computed (:mod:`mechscope.hooks.replay`). :func:`causal_trace_reference` is the
paper's algorithm, one full forward of the clean and noised rows per cell, and the tests
hold the two equal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mechscope.facts.dataset import Fact, attribute_token
from mechscope.facts.tokens import subject_span
from mechscope.hooks.replay import record_block_inputs, replay_names, run_from
from mechscope.hooks.tokens import TokenBatch
from mechscope.tracing.config import KINDS, TraceConfig
from mechscope.tracing.result import CausalTrace


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
    scores = torch.full((len(config.kinds), n_layers, n_pos), low)
    readout = torch.full((samples,), n_pos - 1)
    per_run = max(1, config.max_rows // samples)
    for (first_layer, start), cells in _groups(model, config, setup.span, n_pos).items():
        for chunk in (cells[i : i + per_run] for i in range(0, len(cells), per_run)):
            hooks = _restorers(clean, chunk, start, samples)
            out = run_from(model, inputs, cache, layer=first_layer, start=start, copies=len(chunk),
                           readout=readout, fwd=hooks)
            probs = out.float().softmax(-1)[:, setup.answer].view(len(chunk), samples).mean(1).cpu()
            for (kind, layer, token, _), p in zip(chunk, probs):
                scores[kind, layer, token] = p
    high = float(clean_logits[0, -1].float().softmax(-1)[setup.answer])
    return _result(model, fact, config, setup, scores, low, high)


Cell = tuple[int, int, int, tuple[str, ...]]
"""(kind index, layer, token, hook names restored)."""


def _groups(model, config: TraceConfig, span: range, n_pos: int) -> dict[tuple[int, int], list[Cell]]:
    """Cells by (first layer to run, first position to run). A restoration at token t changes
    nothing before t; the subject's tokens share one start (its first token), each later token
    starts at itself, so no run recomputes more than a few positions it need not."""
    n_layers = model.cfg.n_layers
    groups: dict[tuple[int, int], list[Cell]] = defaultdict(list)
    for k, kind in enumerate(config.kinds):
        for layer in range(n_layers):
            window = config.layers_of(kind, layer, n_layers)
            names = tuple(f"blocks.{w}.{KINDS[kind].hook}" for w in window)
            for token in range(span.start, n_pos):
                start = span.start if token < span.stop else token
                groups[(window.start, start)].append((k, layer, token, names))
    return groups


def _restorers(clean, cells: list[Cell], start: int, samples: int) -> list[tuple[str, Callable]]:
    """Hooks writing, in copy ``c`` (rows of the noised samples), the clean value of its cell's
    token at every hook point its cell restores."""
    targets: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for copy, (_, _, token, names) in enumerate(cells):
        for name in names:
            targets[name].append((copy, token))

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
    scores = torch.empty(len(config.kinds), n_layers, n_pos)
    for k, kind in enumerate(config.kinds):
        for layer in range(n_layers):
            for token in range(n_pos):
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
