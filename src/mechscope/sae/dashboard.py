"""Feature dashboards: what makes a latent fire, and what it does, as self-contained HTML.

    boards = feature_dashboard(model, sae, default_texts(), features=[3, 17, 42])
    boards.to_html("dashboards.html")          # no scripts, no external files
    boards.features[0].top_examples[0].tokens

For each latent, as Neuronpedia and SAEDashboard show it:

* the top-activating examples, each a window of text around a token where it fires
  hard (one per stretch of text), every token highlighted by the latent's activation;
* samples from each activation quantile (equal numbers of firing tokens per group), so
  that the weak end of the range is seen too;
* the histogram of its non-zero activations and its density (firing frequency);
* the output tokens its decoder direction promotes and suppresses most: the direction
  mapped into the residual stream (through ``W_out`` or ``W_O`` for MLP-neuron and
  per-head SAEs), then through the final norm's weight and the unembedding, as
  TransformerLens' folded ``W_U`` would read it (a layer norm also centres it);
* its nearest latents by cosine similarity of decoder directions.

BOS positions are left out by default (``skip_bos``): many latents fire hugely on BOS,
which says nothing about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.activations.collect import keep_mask
from mechscope.errors import InputError
from mechscope.results import Result, write_text_atomic
from mechscope.sae.dash_stats import (
    Activations,
    histogram,
    logit_effects,
    nearest_features,
    quantile_positions,
    top_positions,
)
from mechscope.sae.eval_data import Data, collect_batches
from mechscope.sae.splice import check_features, check_sae_fits, inference_mode


@dataclass(frozen=True)
class Example:
    """A window of text around one token, with one latent's activation on every token."""

    tokens: tuple[str, ...]
    """The window's tokens as text (as the tokenizer decodes each alone)."""
    activations: tuple[float, ...]
    """The latent's activation on each token of the window."""
    center: int
    """Index in the window of the token the example was chosen for."""
    row: int
    """Row of the evaluated text the window comes from."""
    position: int
    """Position of the chosen token in its row."""


@dataclass(frozen=True)
class QuantileGroup:
    """Random examples whose chosen token's activation lies in one quantile range."""

    low: float
    """Lowest activation of the group."""
    high: float
    """Highest activation of the group."""
    n_tokens: int
    """Firing tokens whose activation falls in the group."""
    examples: tuple[Example, ...]
    """Examples drawn at random from those tokens."""


@dataclass(frozen=True)
class FeatureDashboard:
    """Everything a dashboard shows about one latent."""

    feature: int
    """The latent's index."""
    density: float
    """Fraction of the counted tokens on which it fires (activation > 0)."""
    max_activation: float
    """Its largest activation."""
    mean_activation: float
    """Its mean activation over the tokens where it fires."""
    top_examples: tuple[Example, ...]
    """Windows around its largest activations, largest first, one per stretch of text."""
    quantiles: tuple[QuantileGroup, ...]
    """Samples from equal-count quantiles of its non-zero activations, highest first."""
    histogram_edges: tuple[float, ...]
    """Bin edges (from 0 to the maximum) of the histogram of its non-zero activations."""
    histogram_counts: tuple[int, ...]
    """Non-zero activations per bin."""
    promoted: tuple[tuple[str, float], ...]
    """Output tokens its decoder direction raises most, with the logit change per unit activation."""
    suppressed: tuple[tuple[str, float], ...]
    """Output tokens it lowers most (most negative first)."""
    neighbors: tuple[tuple[int, float], ...]
    """Latents with the most similar decoder directions, with their cosine similarity."""


@dataclass(frozen=True)
class FeatureDashboards(Result):
    """Dashboards of some latents of one SAE, over one stretch of text."""

    model_name: str
    """The model the activations came from."""
    hook_name: str
    """Where the SAE reads."""
    d_sae: int
    """The SAE's number of latents."""
    n_tokens: int
    """Tokens the densities and histograms count (BOS left out if ``skip_bos``)."""
    logits_note: str
    """How promoted/suppressed tokens were computed, or why there are none."""
    features: tuple[FeatureDashboard, ...]
    """One dashboard per latent, in the order asked for."""

    def to_html(self, path: str | Path) -> Path:
        """Write every dashboard into one self-contained HTML page (inline CSS and SVG,
        no scripts, every model token escaped); returns the path."""
        from mechscope.sae.dash_html import render

        path = Path(path)
        if path.is_dir():
            raise InputError(f"{path} is a directory; give a file name such as {path / 'dashboards.html'}")
        return write_text_atomic(path, render(self))


def feature_dashboard(
    model,
    sae,
    data: Data,
    *,
    features: Sequence[int] | None = None,
    top: int | None = None,
    n_tokens: int = 8192,
    seq_len: int = 64,
    batch_size: int = 8,
    split: str = "train",
    skip_bos: bool = True,
    n_examples: int = 10,
    n_quantiles: int = 5,
    per_quantile: int = 3,
    context: tuple[int, int] = (12, 4),
    n_logits: int = 10,
    n_neighbors: int = 5,
    bins: int = 40,
    seed: int = 0,
    progress: bool = True,
) -> FeatureDashboards:
    """Dashboards for ``features``, or for the ``top`` latents that fire on the most tokens.

    Args:
        data: text (packed into rows of ``seq_len`` tokens from ``split``), ids or TokenBatches.
        context: tokens shown before and after an example's chosen token.
        seed: seeds the choice of quantile samples.
    """
    check_sae_fits(model, sae)
    if (features is None) == (top is None):
        raise InputError("give either features=[...] or top=N (the N latents that fire most often)")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= sae.cfg.d_sae):
        raise InputError(f"top must be an integer in 1..{sae.cfg.d_sae} (the SAE's width); received {top!r}")
    chosen = None if features is None else check_features(sae, list(features))
    if chosen is not None and not chosen:
        raise InputError("features is empty; give at least one latent index")
    for name, value in (("n_examples", n_examples), ("n_quantiles", n_quantiles), ("bins", bins)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer; received {value!r}")
    batches = collect_batches(model, data, n_tokens=n_tokens, seq_len=seq_len, batch_size=batch_size, split=split)
    with torch.no_grad(), inference_mode(sae):
        x, acts = _read(model, sae, batches, skip_bos, progress)
        if chosen is None:
            chosen = _most_frequent(sae, x, acts.valid, top)
        acts = acts.with_values(_encode(sae, x, chosen) * acts.valid[..., None])
        effects, note = logit_effects(model, sae, chosen)
        neighbors = nearest_features(sae, chosen, n_neighbors)
    tokens = _TokenText(model.tokenizer)
    layout = dict(n_examples=n_examples, n_quantiles=n_quantiles, per_quantile=per_quantile, context=context,
                  bins=bins, n_logits=n_logits, seed=seed)
    boards = tuple(
        _board(acts, j, feature, tokens, None if effects is None else effects[j], neighbors[j], **layout)
        for j, feature in enumerate(tqdm(chosen, desc="dashboards", unit="feature", disable=not progress))
    )
    return FeatureDashboards(
        model_name=model.name, hook_name=sae.cfg.hook_name, d_sae=sae.cfg.d_sae,
        n_tokens=int(acts.valid.sum()), logits_note=note, features=boards,
    )


def _board(acts: Activations, j: int, feature: int, tokens: _TokenText, effects: Tensor | None,
           neighbors: list[tuple[int, float]], *, n_examples: int, n_quantiles: int, per_quantile: int,
           context: tuple[int, int], bins: int, n_logits: int, seed: int) -> FeatureDashboard:
    """One latent's dashboard from its activations (column ``j`` of ``acts``)."""
    values = acts.values[..., j]
    firing = values[values > 0]
    promoted = suppressed = ()
    if effects is not None:
        n = min(n_logits, effects.shape[0])
        up, down = effects.topk(n), (-effects).topk(n)
        promoted = tuple((tokens(i), float(v)) for i, v in zip(up.indices.tolist(), up.values))
        suppressed = tuple((tokens(i), -float(v)) for i, v in zip(down.indices.tolist(), down.values))
    groups = quantile_positions(values, n_quantiles, per_quantile, seed + feature)
    edges, counts = histogram(values[acts.valid], bins)
    return FeatureDashboard(
        feature=feature,
        density=float(firing.numel() / max(int(acts.valid.sum()), 1)),
        max_activation=float(firing.max()) if firing.numel() else 0.0,
        mean_activation=float(firing.mean()) if firing.numel() else 0.0,
        top_examples=tuple(_example(acts, tokens, values, r, p, context)
                           for r, p in top_positions(values, n_examples, context[0])),
        quantiles=tuple(
            QuantileGroup(low=lo, high=hi, n_tokens=n,
                          examples=tuple(_example(acts, tokens, values, r, p, context) for r, p in ps))
            for lo, hi, n, ps in groups),
        histogram_edges=edges, histogram_counts=counts, promoted=promoted, suppressed=suppressed,
        neighbors=tuple(neighbors),
    )


def _read(model, sae, batches, skip_bos: bool, progress: bool) -> tuple[Tensor, Activations]:
    """The SAE's input on every token (rows padded to one width, on the CPU), and the masks."""
    xs, ids, real, valid = [], [], [], []
    width = max(batch.ids.shape[1] for batch in batches)
    for batch in tqdm(batches, desc="activations", unit="batch", disable=not progress):
        _, cache = model.run_with_cache(batch, names=[sae.cfg.hook_name], device="cpu")
        pad = width - batch.ids.shape[1]
        xs.append(torch.nn.functional.pad(cache[sae.cfg.hook_name].flatten(2).float(), (0, 0, 0, pad)))
        ids.append(torch.nn.functional.pad(batch.ids.cpu(), (0, pad)))
        real.append(torch.nn.functional.pad(batch.attention_mask.cpu().bool(), (0, pad)))
        valid.append(torch.nn.functional.pad(keep_mask(model, batch, exclude_bos=skip_bos).cpu(), (0, pad)))
    x = torch.cat(xs)
    return x, Activations(ids=torch.cat(ids), real=torch.cat(real), valid=torch.cat(valid), values=x[..., :0])


def _encode(sae, x: Float[Tensor, "rows pos d_in"], features: list[int], chunk: int = 4096) -> Tensor:
    """Activations of ``features`` on every token, encoded in chunks (rows pos n_features)."""
    device = next(sae.parameters()).device
    flat = x.reshape(-1, x.shape[-1])
    out = [sae.encode(part.to(device))[:, features].float().cpu() for part in flat.split(chunk)]
    return torch.cat(out).reshape(*x.shape[:2], len(features))


def _most_frequent(sae, x: Tensor, valid: Tensor, top: int, chunk: int = 4096) -> list[int]:
    """The ``top`` latents firing on the most counted tokens (ties: lower index first)."""
    device = next(sae.parameters()).device
    counts = torch.zeros(sae.cfg.d_sae, dtype=torch.long)
    mask = valid.reshape(-1)
    for part, keep in zip(x.reshape(-1, x.shape[-1]).split(chunk), mask.split(chunk)):
        counts += ((sae.encode(part.to(device)) != 0) & keep.to(device)[:, None]).sum(0).cpu()
    order = sorted(range(sae.cfg.d_sae), key=lambda i: (-int(counts[i]), i))
    return order[:top]


class _TokenText:
    """Token id -> text as the tokenizer decodes it alone, remembered (windows overlap a lot)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.known: dict[int, str] = {}

    def __call__(self, token: int) -> str:
        if token not in self.known:
            self.known[token] = self.tokenizer.decode([token])
        return self.known[token]


def _example(acts: Activations, tokens: _TokenText, values: Tensor, row: int, pos: int,
             context: tuple[int, int]) -> Example:
    """The window of real tokens around (row, pos)."""
    start, stop = max(0, pos - context[0]), min(values.shape[1], pos + context[1] + 1)
    keep = [p for p in range(start, stop) if bool(acts.real[row, p])]
    return Example(
        tokens=tuple(tokens(int(acts.ids[row, p])) for p in keep),
        activations=tuple(float(values[row, p]) for p in keep),
        center=keep.index(pos), row=row, position=pos,
    )
