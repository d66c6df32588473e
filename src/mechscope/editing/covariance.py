"""The second moment of MLP keys, ``C = E[k kᵀ]``, that ROME and MEMIT's updates are scaled by.

::

    stats = key_covariance(model, layer=12)          # cached: computed once per model and layer
    stats.matrix, stats.n_tokens, stats.seconds       # (d_mlp, d_mlp), how many tokens, how long it took

A key is the input of a layer's MLP output projection (``mlp.hook_post``) at one token.
C is averaged over ``n_tokens`` tokens of the offline corpus (rows of ``seq_len``
tokens, BOS positions left out; the paper used 100,000 Wikipedia samples, which takes
hours; a few hundred thousand tokens take a minute or two on a laptop CPU). The forward
pass stops after the deepest layer asked for, and several layers are collected in one
pass. Results are cached as safetensors under the mechscope cache directory, keyed by
the model's weight hash, the layer and the corpus settings, and written atomically.

The offline corpus is Python documentation, which names few people, places or works, so
the keys that subjects make are rare in it and C⁻¹ magnifies what all subjects share: a
ROME update for one subject then reaches the others. ``entity_weight`` mixes in keys from
sentences that name entities (by default the built-in facts, :func:`entity_sentences`)::

    C = (1 − w)·E_corpus[k kᵀ] + w·E_entities[k kᵀ]

Each sentence runs alone (a batch padded on the right); its moment is cached beside the
corpus's, so a new weight costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float
from safetensors.torch import load_file, save
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.activations.collect import keep_mask, read_points
from mechscope.activations.harvest import corpus_hash
from mechscope.corpus import default_texts, stdlib_texts, token_batches
from mechscope.errors import InputError
from mechscope.models.cache import cache_root
from mechscope.models.identity import weights_hash
from mechscope.results import write_bytes_atomic

CORPORA: dict[str, Callable[[], list[str]]] = {
    "default": default_texts,
    "large": lambda: default_texts() + stdlib_texts(),
}
"""Offline corpora by name (``large`` adds the standard library's docstrings and comments)."""


@dataclass(frozen=True, kw_only=True)
class CovarianceConfig:
    """Where the key statistics come from."""

    n_tokens: int = 100_000
    """Tokens to average over (fewer if the corpus has fewer)."""
    corpus: str = "large"
    """A key of :data:`CORPORA`."""
    seq_len: int = 128
    """Tokens per row."""
    batch_size: int = 8
    """Rows per forward pass."""
    texts: tuple[str, ...] | None = None
    """Your own texts instead of a named corpus (their hash keys the cache)."""
    entity_weight: float = 0.0
    """Share ``w`` of C taken from ``entity_texts`` (0: the corpus alone)."""
    entity_texts: tuple[str, ...] | None = None
    """Sentences naming entities, one per string (None: :func:`entity_sentences` of the built-in facts)."""

    def __post_init__(self) -> None:
        for name, least in (("n_tokens", 1), ("seq_len", 2), ("batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InputError(f"CovarianceConfig.{name} must be an integer of at least {least}; received {value!r}")
        if self.texts is not None and (not isinstance(self.texts, tuple) or not all(isinstance(t, str) for t in self.texts)):
            raise InputError("CovarianceConfig.texts must be a tuple of strings or None")
        if isinstance(self.entity_weight, bool) or not isinstance(self.entity_weight, (int, float)) \
                or not 0 <= self.entity_weight < 1:
            raise InputError(f"CovarianceConfig.entity_weight must be a number in [0, 1); received {self.entity_weight!r}")
        if self.entity_texts is not None and (not isinstance(self.entity_texts, tuple) or not self.entity_texts
                                              or not all(isinstance(t, str) and t.strip() for t in self.entity_texts)):
            raise InputError("CovarianceConfig.entity_texts must be None or a non-empty tuple of non-empty strings")
        if self.corpus not in CORPORA:
            raise InputError(f"CovarianceConfig.corpus must be one of {', '.join(CORPORA)}; received {self.corpus!r}")

    @property
    def corpus_tag(self) -> str:
        """Names the corpus part (and its cache entry)."""
        source = self.corpus if self.texts is None else "texts" + corpus_hash(self.texts)[:12]
        return f"{source}-{self.n_tokens}x{self.seq_len}"

    @property
    def entity_tag(self) -> str:
        """Names the entity sentences' part (and its cache entry)."""
        return "entities" + corpus_hash(self.load_entity_texts())[:12]

    def part_tag(self, part: str) -> str:
        """The tag of one part, ``"corpus"`` or ``"entities"``."""
        return self.corpus_tag if part == "corpus" else self.entity_tag

    @property
    def tag(self) -> str:
        """Names the whole mixture."""
        return self.corpus_tag + (f"+{self.entity_weight:g}{self.entity_tag}" if self.entity_weight else "")

    def load_texts(self) -> list[str]:
        return list(self.texts) if self.texts is not None else CORPORA[self.corpus]()

    def load_entity_texts(self) -> tuple[str, ...]:
        return self.entity_texts if self.entity_texts is not None else entity_sentences()


def entity_sentences(facts=None, *, exclude_subjects: Iterable[str] = ()) -> tuple[str, ...]:
    """Each fact as a sentence, ``prompt + " " + attribute`` (default: the built-in facts),
    leaving out the facts about ``exclude_subjects`` (held out when edits are evaluated)."""
    from mechscope.facts import builtin_facts

    facts = builtin_facts() if facts is None else facts
    excluded = set(exclude_subjects)
    sentences = tuple(f"{f.prompt} {f.attribute}" for f in facts if f.subject not in excluded)
    if not sentences:
        raise InputError("no entity sentences are left once the excluded subjects are left out; give more facts")
    return sentences


@dataclass(frozen=True, kw_only=True)
class KeyStatistics:
    """``E[k kᵀ]`` of one layer's MLP keys."""

    layer: int
    """The layer."""
    matrix: Float[Tensor, "d_mlp d_mlp"]
    """The uncentred second moment (float32)."""
    n_tokens: int
    """Tokens averaged over."""
    seconds: float
    """How long computing it took (the pass that made it, shared by its layers)."""
    model_hash: str
    """Weight hash of the model it was computed on."""
    corpus: str
    """The corpus settings' tag."""
    entity_tokens: int = 0
    """Of ``n_tokens``, how many came from the entity sentences."""


def cache_path(model_hash: str, layer: int, config: CovarianceConfig, *, part: str = "corpus") -> Path:
    """Where one part (``"corpus"`` or ``"entities"``) of one layer's statistics is cached."""
    return cache_root() / "covariance" / model_hash / f"layer{layer}-{config.part_tag(part)}.safetensors"


def key_covariance(model, layer: int, *, config: CovarianceConfig = CovarianceConfig(),
                   progress: bool = True) -> KeyStatistics:
    """One layer's key statistics, from the cache or computed (and cached)."""
    return key_covariances(model, [layer], config=config, progress=progress)[layer]


def key_covariances(model, layers: Sequence[int], *, config: CovarianceConfig = CovarianceConfig(),
                    progress: bool = True) -> dict[int, KeyStatistics]:
    """Several layers' key statistics; the missing ones are computed in one pass."""
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < model.cfg.n_layers:
            raise InputError(f"layer must be in 0..{model.cfg.n_layers - 1} for {model.name}; received {layer!r}")
    digest = weights_hash(model)
    found = _cached(model, layers, config, digest, "corpus", _compute, progress)
    if not config.entity_weight:
        return found
    entities = _cached(model, layers, config, digest, "entities", _compute_entities, progress)
    w = config.entity_weight
    return {layer: KeyStatistics(layer=layer, matrix=(1 - w) * found[layer].matrix + w * entities[layer].matrix,
                                 n_tokens=found[layer].n_tokens + entities[layer].n_tokens,
                                 seconds=found[layer].seconds + entities[layer].seconds, model_hash=digest,
                                 corpus=config.tag, entity_tokens=entities[layer].n_tokens)
            for layer in layers}


def _cached(model, layers: Sequence[int], config: CovarianceConfig, digest: str, part: str, compute,
            progress: bool) -> dict[int, KeyStatistics]:
    """One part's statistics per layer, read from the cache or computed for the missing layers in one pass."""
    tag = config.part_tag(part)
    found = {layer: _read(cache_path(digest, layer, config, part=part), layer, digest, tag) for layer in layers}
    missing = sorted(layer for layer, stats in found.items() if stats is None)
    if missing:
        for stats in compute(model, missing, config, digest, progress):
            _write(stats, cache_path(digest, stats.layer, config, part=part))
            found[stats.layer] = stats
    return found


@torch.no_grad()
def _compute(model, layers: list[int], config: CovarianceConfig, digest: str, progress: bool) -> list[KeyStatistics]:
    sums = _zero_sums(model, layers)
    batches = token_batches(model, config.load_texts(), seq_len=config.seq_len, batch_size=config.batch_size)
    bos = model.tokenizer.bos_token_id
    counted, started = 0, time.perf_counter()
    bar = tqdm(total=config.n_tokens, desc=f"key covariance, layers {layers}", unit="tok", disable=not progress,
               leave=False)
    for ids in batches:
        ids = ids[: max(1, -(-(config.n_tokens - counted) // config.seq_len))].to(model.device)
        keep = ids != bos if bos is not None else torch.ones_like(ids, dtype=torch.bool)
        kept = _add_grams(model, sums, ids, keep)
        counted += kept
        bar.update(kept)
        if counted >= config.n_tokens:
            break
    bar.close()
    return _statistics(sums, counted, time.perf_counter() - started, digest, config.corpus_tag)


@torch.no_grad()
def _compute_entities(model, layers: list[int], config: CovarianceConfig, digest: str,
                      progress: bool) -> list[KeyStatistics]:
    """``E[k kᵀ]`` over the entity sentences' tokens, each sentence in its own row (BOS and padding left out)."""
    texts = config.load_entity_texts()
    sums = _zero_sums(model, layers)
    counted, started, chunk = 0, time.perf_counter(), 32
    for i in tqdm(range(0, len(texts), chunk), desc=f"entity key moments, layers {layers}", disable=not progress,
                  leave=False):
        batch = model.tokenize(list(texts[i:i + chunk]))
        counted += _add_grams(model, sums, batch, keep_mask(model, batch).to(model.device))
    return _statistics(sums, counted, time.perf_counter() - started, digest, config.entity_tag)


def _zero_sums(model, layers: Sequence[int]) -> dict[int, Tensor]:
    return {layer: torch.zeros(model.cfg.d_mlp, model.cfg.d_mlp, dtype=torch.float64) for layer in layers}


def _add_grams(model, sums: dict[int, Tensor], batch, keep: Tensor) -> int:
    """Add ``Σ k kᵀ`` over the kept tokens of ``batch`` to each layer's sum; return how many were kept."""

    def gram(keys: Tensor) -> Tensor:
        flat = keys[keep].float()
        return (flat.T @ flat).double().cpu()

    names = [f"blocks.{layer}.mlp.hook_post" for layer in sums]
    # The model runs no further than the deepest layer read.
    for layer, value in zip(sums, read_points(model, names, batch, gram)):
        sums[layer] += value
    return int(keep.sum())


def _statistics(sums: dict[int, Tensor], counted: int, seconds: float, digest: str, tag: str) -> list[KeyStatistics]:
    return [KeyStatistics(layer=layer, matrix=(total / counted).float(), n_tokens=counted, seconds=seconds,
                          model_hash=digest, corpus=tag) for layer, total in sums.items()]


def _read(path: Path, layer: int, digest: str, tag: str) -> KeyStatistics | None:
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        matrix = load_file(path)["matrix"]
    except Exception:  # a damaged entry is recomputed, never trusted
        return None
    return KeyStatistics(layer=layer, matrix=matrix, n_tokens=int(meta["n_tokens"]), seconds=float(meta["seconds"]),
                         model_hash=digest, corpus=tag)


def _write(stats: KeyStatistics, path: Path) -> None:
    write_bytes_atomic(path, save({"matrix": stats.matrix.contiguous()},
                                  metadata={"n_tokens": str(stats.n_tokens), "seconds": f"{stats.seconds:.3f}"}))
