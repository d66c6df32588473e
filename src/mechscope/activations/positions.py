"""Activations at chosen positions of labelled prompts: one vector per prompt.

Probes and steering vectors read a prompt at one place: its last token, the tokens of a
named word, or the mean over a span. A :class:`Position` says where, and
:func:`read_positions` reads every prompt there in batched forward passes that stop at
the deepest hook point asked for::

    read = read_positions(model, ["blocks.5.hook_resid_post", "blocks.9.hook_resid_post"],
                          ["The keys near the cabinet", "The key near the cabinets"],
                          Position.parse("word:key"))      # or "last", "mean", "span:4:8", "index:-2"
    read.acts["blocks.5.hook_resid_post"]                  # (2, d_model)
    read.tokens                                            # (' keys', ' key'): what was read

Every rule selects some of a prompt's tokens (never the BOS token a tokenizer may add,
never padding), and ``reduce`` makes one vector of them: their ``mean`` or the ``last``
of them (a multi-token word is often read at its last token, where it is complete).
Words and spans are found in the *text* and mapped onto tokens through the tokenizer's
character offsets, so they work with any tokenizer that reports offsets (every fast one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.activations.collect import read_points
from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch, batch_from_ids, bos_prefix, pad_id

Offsets = Sequence[tuple[int, int]]


@dataclass(frozen=True, kw_only=True)
class Position:
    """Which tokens of a prompt to read, and how to make one vector of them."""

    rule: str = "last"
    """``last`` (the last token), ``mean`` (every token), ``word`` (the tokens of ``word``'s first
    occurrence), ``span`` (the tokens overlapping characters ``[start, end)``), ``index``
    (token ``start`` of the text, negative from the end)."""
    word: str | None = None
    """Rule ``word``: the word whose tokens are read."""
    start: int | None = None
    """Rule ``span``: first character; rule ``index``: the token index."""
    end: int | None = None
    """Rule ``span``: one past the last character."""
    reduce: str = "mean"
    """How the selected tokens make one vector: ``mean`` or ``last``."""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise InputError(f"Position.rule must be one of {', '.join(RULES)}; received {self.rule!r}")
        if self.reduce not in REDUCTIONS:
            raise InputError(f"Position.reduce must be one of {', '.join(REDUCTIONS)}; received {self.reduce!r}")
        if self.rule == "word" and not (isinstance(self.word, str) and self.word.strip()):
            raise InputError(f"Position.word must be a non-empty word for rule 'word'; received {self.word!r}")
        if self.rule == "span" and not (_is_int(self.start) and _is_int(self.end) and 0 <= self.start < self.end):
            raise InputError(f"Position.start and .end must be characters 0 <= start < end for rule 'span'; "
                             f"received {self.start!r}, {self.end!r}")
        if self.rule == "index" and not _is_int(self.start):
            raise InputError(f"Position.start must be a token index for rule 'index'; received {self.start!r}")

    @classmethod
    def parse(cls, text: str) -> Position:
        """``last``, ``mean``, ``word:WORD``, ``span:START:END``, ``index:I``, each optionally
        followed by ``@last`` or ``@mean`` (the reduction), e.g. ``word:Paris@last``."""
        if isinstance(text, Position):
            return text
        if not isinstance(text, str):
            raise InputError(f"a position is text such as 'last' or 'word:Paris'; received {text!r}")
        body, _, reduce = text.rpartition("@") if "@" in text else (text, "", "mean")
        rule, _, rest = body.partition(":")
        try:
            if rule == "word":
                return cls(rule=rule, word=rest, reduce=reduce)
            if rule == "span":
                start, end = rest.split(":")
                return cls(rule=rule, start=int(start), end=int(end), reduce=reduce)
            if rule == "index":
                return cls(rule=rule, start=int(rest), reduce=reduce)
        except ValueError:
            pass
        else:
            if not rest:
                return cls(rule=rule, reduce=reduce)
        raise InputError(f"cannot read position {text!r}; write last, mean, word:WORD, span:START:END or index:I "
                         f"(optionally ending in @last or @mean)")

    @property
    def name(self) -> str:
        """The text :meth:`parse` reads back."""
        body = {"word": f"word:{self.word}", "span": f"span:{self.start}:{self.end}",
                "index": f"index:{self.start}"}.get(self.rule, self.rule)
        return body if self.reduce == "mean" or self.rule == "last" else f"{body}@{self.reduce}"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _overlapping(offsets: Offsets, start: int, end: int) -> list[int]:
    return [i for i, (a, b) in enumerate(offsets) if a < end and b > start]


def _word(position: Position, text: str, offsets: Offsets) -> list[int]:
    start = text.find(position.word)
    if start < 0:
        raise InputError(f"the word {position.word!r} does not occur in {text!r}")
    return _overlapping(offsets, start, start + len(position.word))


def _span(position: Position, text: str, offsets: Offsets) -> list[int]:
    if position.end > len(text):
        raise InputError(f"span {position.start}:{position.end} runs past the end of {text!r} ({len(text)} characters)")
    return _overlapping(offsets, position.start, position.end)


def _index(position: Position, text: str, offsets: Offsets) -> list[int]:
    if not -len(offsets) <= position.start < len(offsets):
        raise InputError(f"token index {position.start} is outside {text!r}, which has {len(offsets)} tokens")
    return [position.start % len(offsets)]


RULES: dict[str, Callable[[Position, str, Offsets], list[int]]] = {
    "last": lambda position, text, offsets: [len(offsets) - 1],
    "mean": lambda position, text, offsets: list(range(len(offsets))),
    "word": _word,
    "span": _span,
    "index": _index,
}
"""Each rule's selection: indices into a text's own tokens (no BOS)."""

REDUCTIONS: dict[str, Callable[[list[int]], Tensor]] = {
    "mean": lambda picked: torch.full((len(picked),), 1.0 / len(picked)),
    "last": lambda picked: torch.tensor([0.0] * (len(picked) - 1) + [1.0]),
}
"""Each reduction's weights over the selected tokens (in order)."""


@dataclass(frozen=True)
class PositionReading:
    """Activations read at one position of each prompt."""

    acts: dict[str, Float[Tensor, "prompt width"]]
    """One row per prompt at each hook point (heads flattened), float32 on the CPU."""
    tokens: tuple[str, ...]
    """The text of the tokens each prompt was read at (e.g. a control task's word types)."""


def position_weights(
    model, texts: Sequence[str], positions: Position | Sequence[Position], *, prepend_bos: bool | None = None
) -> tuple[TokenBatch, Float[Tensor, "prompt pos"], tuple[str, ...]]:
    """The prompts as one right-padded batch, each row's weights over its positions
    (summing to 1), and the text of the tokens each row reads."""
    texts = list(texts)
    positions = [positions] * len(texts) if isinstance(positions, Position) else list(positions)
    if not texts or len(positions) != len(texts):
        raise InputError(f"need one position per prompt (and at least one prompt); received {len(positions)} "
                         f"positions for {len(texts)} prompts")
    prefix = bos_prefix(model.tokenizer, prepend_bos)
    rows, picks = [], []
    for i, (text, position) in enumerate(zip(texts, positions)):
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"prompt {i} must be non-empty text; received {text!r}")
        encoded = model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        try:
            picked = RULES[position.rule](position, text, encoded["offset_mapping"])
        except InputError as error:
            raise InputError(f"prompt {i}: {error}") from None
        if not picked:
            raise InputError(f"prompt {i}: position {position.name} selects no token of {text!r}")
        rows.append(prefix + list(encoded["input_ids"]))
        picks.append((picked, REDUCTIONS[position.reduce](picked)))
    batch = batch_from_ids(rows, pad_id=pad_id(model.tokenizer), padding_side="right")
    weights = torch.zeros(batch.ids.shape, dtype=torch.float32)
    read = []
    for row, (picked, w) in enumerate(picks):
        index = torch.tensor(picked) + len(prefix)
        weights[row, index] = w
        read.append(model.tokenizer.decode(batch.ids[row, index[w > 0]].tolist()))
    return batch, weights, tuple(read)


def read_positions(
    model,
    hook_names: str | Sequence[str],
    texts: Sequence[str],
    positions: Position | Sequence[Position] = Position(),
    *,
    batch_size: int = 32,
    prepend_bos: bool | None = None,
    transform: Callable[[Tensor], Tensor] | None = None,
    progress: bool = False,
) -> PositionReading:
    """Each prompt's activation at its position, at every named hook point (one forward
    pass per ``batch_size`` prompts, stopping after the deepest point).

    ``transform`` maps every token's activation (``batch pos width``, heads flattened)
    before the tokens are pooled, e.g. ``sae.encode``: SAE latents are averaged over a
    span, not computed from the span's average."""
    names = [hook_names] if isinstance(hook_names, str) else list(hook_names)
    for name in names:
        if model.hook_point(name).dims[:2] != ("batch", "pos"):
            raise InputError(f"{name} has no token dimension; read a point whose dims start with 'batch pos'")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; received {batch_size!r}")
    batch, weights, tokens = position_weights(model, texts, positions, prepend_bos=prepend_bos)
    parts: list[list[Tensor]] = [[] for _ in names]
    for first in tqdm(range(0, len(tokens), batch_size), desc="reading activations", disable=not progress):
        rows = slice(first, first + batch_size)
        width = int(batch.attention_mask[rows].sum(-1).max())  # right padding: trim to the longest row
        chunk = TokenBatch(batch.ids[rows, :width], batch.attention_mask[rows, :width]).to(model.device)
        w = weights[rows, :width].to(model.device)

        def read(act: Tensor, w: Tensor = w) -> Tensor:
            act = act.flatten(2) if transform is None else transform(act.flatten(2))
            return torch.einsum("bp,bpw->bw", w, act.float()).cpu()

        for part, value in zip(parts, read_points(model, names, chunk, read)):
            part.append(value)
    return PositionReading(acts={name: torch.cat(part) for name, part in zip(names, parts)}, tokens=tokens)
