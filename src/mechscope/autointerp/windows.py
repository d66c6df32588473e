"""Contexts cut from an activation store, and two passes over it that examples are chosen from.

A harvest keeps, for every stored token, its id and its (row, position) in the row
stream, so contexts are rebuilt without the corpus or the model: each row's tokens are
cut into windows of ``ctx_len`` consecutive tokens (the row's tail gives a shorter one;
no window spans two rows). Pass one (:func:`window_maxima`) computes every unit's peak in
every window; pass two (:func:`gather`) reads the chosen windows' per-token activations
and counts which tokens each unit fires on.

    index = WindowIndex.of(store, ctx_len=32, max_tokens=200_000)
    peaks = window_maxima(store, units, [3, 17], index)            # (windows, 2)
    acts, counts = gather(store, units, [3, 17], index, chosen, thresholds)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.errors import InputError


@dataclass(frozen=True)
class WindowIndex:
    """Where every window of a store lies in its token stream."""

    token_ids: Int[Tensor, " tokens"]
    """Every stored token's id, in stream order (the first ``max_tokens`` of the store)."""
    window_of: Int[Tensor, " tokens"]
    """Each token's window."""
    starts: Int[Tensor, " windows"]
    """Index in the stream of each window's first token."""
    lengths: Int[Tensor, " windows"]
    """Tokens in each window (``ctx_len`` but at the end of a row)."""
    shard_ends: tuple[int, ...]
    """Stream index where each shard read ends."""
    ctx_len: int
    """Tokens per window."""

    @property
    def n_windows(self) -> int:
        return len(self.starts)

    @classmethod
    def of(cls, store, *, ctx_len: int, max_tokens: int | None = None) -> WindowIndex:
        ids, rows, positions, ends = [], [], [], []
        total = 0
        for s in range(len(store.manifest["shards"])):
            if max_tokens is not None and total >= max_tokens:
                break
            part = store.shard(s, ["token_ids", "locations"])
            take = len(part["token_ids"]) if max_tokens is None else min(len(part["token_ids"]), max_tokens - total)
            ids.append(part["token_ids"][:take].long())
            rows.append(part["locations"][:take, 0].long())
            positions.append(part["locations"][:take, 1].long())
            total += take
            ends.append(total)
        if total == 0:
            raise InputError(f"{store.path} holds no tokens; harvest some first")
        row, pos = torch.cat(rows), torch.cat(positions)
        # windows restart at each row's first stored position
        new_row = torch.ones_like(row, dtype=torch.bool)
        new_row[1:] = row[1:] != row[:-1]
        row_start = torch.cummax(torch.where(new_row, torch.arange(len(row)), 0), 0).values
        offset = pos - pos[row_start]
        starts_here = new_row | (offset % ctx_len == 0)
        window_of = starts_here.long().cumsum(0) - 1
        starts = starts_here.nonzero().squeeze(-1)
        lengths = torch.diff(torch.cat([starts, torch.tensor([len(row)])]))
        return cls(token_ids=torch.cat(ids), window_of=window_of, starts=starts, lengths=lengths,
                   shard_ends=tuple(ends), ctx_len=ctx_len)

    def token_grid(self, windows: Sequence[int]) -> Int[Tensor, "n ctx_len"]:
        """Stream indices of the tokens of ``windows``, padded with -1."""
        windows = torch.as_tensor(list(windows), dtype=torch.long)
        grid = self.starts[windows, None] + torch.arange(self.ctx_len)
        return torch.where(torch.arange(self.ctx_len) < self.lengths[windows, None], grid, -1)


def _chunks(store, units_source, units: Sequence[int], index: WindowIndex) -> Iterator[tuple[int, Tensor]]:
    """(first stream index, unit activations (tokens, units)) for each shard read."""
    first = 0
    for s, end in enumerate(index.shard_ends):
        x = store.shard(s, [units_source.reads])[units_source.reads][: end - first] if units_source.reads else None
        acts = units_source.activations(x, index.token_ids[first:end], units)
        yield first, acts
        first = end


def window_maxima(store, units_source, units: Sequence[int], index: WindowIndex, *,
                  progress: bool = False) -> Float[Tensor, "windows units"]:
    """Every unit's peak activation in every window."""
    peaks = torch.full((index.n_windows, len(units)), -torch.inf)
    bar = tqdm(total=len(index.token_ids), unit="tok", unit_scale=True, desc="scan", disable=not progress)
    for first, acts in _chunks(store, units_source, units, index):
        windows = index.window_of[first : first + len(acts)]
        peaks.scatter_reduce_(0, windows[:, None].expand_as(acts), acts.float(), "amax")
        bar.update(len(acts))
    bar.close()
    return peaks


def gather(store, units_source, units: Sequence[int], index: WindowIndex, chosen: Sequence[Sequence[int]],
           thresholds: Tensor, *, progress: bool = False) -> tuple[list[Tensor], list[Counter]]:
    """Per unit, the activations on its ``chosen`` windows (n ctx_len, 0 on padding) and a
    count of the token ids it fires on (activation above its threshold) in the whole scan."""
    grids = [index.token_grid(windows) for windows in chosen]
    out = [torch.zeros(grid.shape) for grid in grids]
    counts = [Counter() for _ in units]
    bar = tqdm(total=len(index.token_ids), unit="tok", unit_scale=True, desc="read", disable=not progress)
    for first, acts in _chunks(store, units_source, units, index):
        last = first + len(acts)
        ids = index.token_ids[first:last]
        for j, grid in enumerate(grids):
            here = (grid >= first) & (grid < last)
            out[j][here] = acts[grid[here] - first, j]
            firing = ids[acts[:, j] > thresholds[j]]
            counts[j].update(firing.tolist())
        bar.update(len(acts))
    bar.close()
    return out, counts
