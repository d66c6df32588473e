"""An on-disk activation store: read shuffled batches of what :mod:`mechscope.activations.harvest` stored.

::

    from mechscope.activations import harvest

    store = harvest(model, "blocks.15.hook_resid_post", texts, "acts/", n_tokens=1_000_000,
                    dtype="bfloat16")
    store = ActivationStore.open("acts/")
    store.check_model(model)                       # refuses a store made from another model
    for x in store.batches(4096, seed=0):          # (4096, 576), shuffled across shards
        ...

    # a transcoder: two points stored side by side, read as (input, target) pairs
    harvest(model, ["blocks.15.ln2.hook_normalized", "blocks.15.hook_mlp_out"], texts, "tc/", n_tokens=...)
    pairs = ActivationStore.open("tc/", target="blocks.15.hook_mlp_out")

**Layout.** ``out_dir/manifest.json`` plus ``shard-00000.safetensors``, … Each shard
holds ``shard_tokens`` tokens (the last one fewer): one ``(tokens, width)`` tensor per
hook point, named by the point, and ``token_ids`` (tokens,) and ``locations`` (tokens, 2)
= (row, position) in the harvest's row stream, so that every activation can be traced
back to its context. The manifest says which model (:class:`ModelIdentity`), which
points and widths, the :class:`~mechscope.activations.manifest.HarvestSettings`, a hash of the corpus, the shards with
their token counts, how many tokens are stored, the stream position to continue from,
and whether the harvest is complete. No pickle anywhere: safetensors and JSON only.

**Reading.** :meth:`ActivationStore.batches` never loads more than two windows of
``mix_shards`` shards: an epoch visits the shards in an order shuffled by ``seed``, a
window of ``mix_shards`` of them at a time, its tokens shuffled together (rows were
already shuffled at harvest). Every token appears once per epoch (the last partial
batch is dropped), and ``start`` jumps to any batch by counting tokens, not by reading.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import Tensor

from mechscope.activations.manifest import (
    DTYPES,
    HarvestSettings,
    ModelIdentity,
    StoreMismatchError,
    model_mismatch,
    read_manifest,
)
from mechscope.activations.source import Batch
from mechscope.errors import InputError, check_int


@dataclass
class ActivationStore:
    """A harvested store, read lazily: an :class:`~mechscope.activations.source.ActivationSource`.

    Use :meth:`open`. With ``target`` set, :meth:`batches` yields (input, target) pairs."""

    path: Path
    """The store directory."""
    manifest: dict[str, Any] = field(repr=False)
    """The parsed ``manifest.json``."""
    input: str
    """The hook point read as input."""
    target: str | None
    """The hook point read as target, or None (batches are plain tensors)."""
    mix_shards: int
    """Shards shuffled together while reading."""

    @classmethod
    def open(cls, path: str | Path, *, input: str | None = None, target: str | None = None,
             mix_shards: int = 4) -> ActivationStore:
        """Open a store. ``input`` defaults to the first stored point; give ``target``
        (the second point of a transcoder harvest) to read pairs."""
        path = Path(path)
        manifest = read_manifest(path)
        stored = [hook["name"] for hook in manifest["hooks"]]
        input = stored[0] if input is None else input
        for role, name in (("input", input), ("target", target)):
            if name is not None and name not in stored:
                raise InputError(f"{path} stores {', '.join(stored)}; received {role}={name!r}")
        check_int("ActivationStore.mix_shards", mix_shards, minimum=1)
        return cls(path=path, manifest=manifest, input=input, target=target, mix_shards=mix_shards)

    # ---------------------------------------------------------------- facts
    @property
    def hook_names(self) -> list[str]:
        return [hook["name"] for hook in self.manifest["hooks"]]

    def width(self, name: str) -> int:
        return next(hook["width"] for hook in self.manifest["hooks"] if hook["name"] == name)

    @property
    def d_in(self) -> int:
        """Width of the inputs."""
        return self.width(self.input)

    @property
    def d_out(self) -> int:
        """Width of the targets (of the inputs, without a target)."""
        return self.width(self.target or self.input)

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.manifest["settings"]["dtype"]]

    @property
    def complete(self) -> bool:
        return bool(self.manifest["complete"])

    @property
    def settings(self) -> HarvestSettings:
        data = self.manifest["settings"]
        return HarvestSettings(**{**data, "hook_names": tuple(data["hook_names"])})

    def __len__(self) -> int:
        return int(self.manifest["tokens"])

    def check_model(self, model) -> None:
        """Raise :class:`StoreMismatchError` unless ``model`` is the one harvested from."""
        stored = ModelIdentity.from_dict(self.manifest["model"])
        current = ModelIdentity.of(model)
        if not stored.matches(current):
            raise StoreMismatchError(model_mismatch(self.path, stored, current))

    def shard(self, index: int, names: Sequence[str] | None = None) -> dict[str, Tensor]:
        """The tensors of one shard (all of them, or those named)."""
        file = self.path / self.manifest["shards"][index]["file"]
        with safe_open(str(file), framework="pt") as reader:
            return {name: reader.get_tensor(name) for name in (names or list(reader.keys()))}

    # ------------------------------------------------------------ batches
    def batches(self, batch_size: int, *, seed: int = 0, start: int = 0) -> Iterator[Batch]:
        """One epoch of shuffled batches for ``seed``, from batch index ``start`` on."""
        check_int("ActivationStore.batches: batch_size", batch_size, minimum=1)
        check_int("ActivationStore.batches: start", start, minimum=0)
        return self._batches(batch_size, seed, start)

    def _batches(self, batch_size: int, seed: int, start: int) -> Iterator[Batch]:
        n_batches = len(self) // batch_size
        chunks = self._shuffled_windows(seed, first_token=start * batch_size)
        held: list[Tensor] = []
        n_held = 0
        for _ in range(start, n_batches):
            while n_held < batch_size:
                chunk = next(chunks)
                held.append(chunk)
                n_held += len(chunk)
            joined = torch.cat(held) if len(held) > 1 else held[0]
            tokens, rest = joined[:batch_size], joined[batch_size:]
            held, n_held = [rest], len(rest)
            if self.target is None:
                yield tokens
            else:
                yield tokens[:, : self.d_in].contiguous(), tokens[:, self.d_in :].contiguous()

    def _shuffled_windows(self, seed: int, *, first_token: int) -> Iterator[Tensor]:
        """The epoch's token stream, window by window, from ``first_token`` on."""
        shards = self.manifest["shards"]
        order = torch.randperm(len(shards), generator=torch.Generator().manual_seed(seed)).tolist()
        windows = [order[i : i + self.mix_shards] for i in range(0, len(order), self.mix_shards)]
        names = [self.input] if self.target is None else [self.input, self.target]
        seen = 0
        for w, window in enumerate(windows):
            size = sum(shards[i]["tokens"] for i in window)
            if seen + size <= first_token:  # skipped by counting, never read
                seen += size
                continue
            parts = [self.shard(i, names) for i in window]
            tokens = torch.cat([torch.cat([part[name] for name in names], dim=1) for part in parts])
            # one generator per window, so that any window can be rebuilt on its own
            generator = torch.Generator().manual_seed(seed * 1_000_003 + w)
            tokens = tokens[torch.randperm(len(tokens), generator=generator)]
            yield tokens[max(0, first_token - seen) :]
            seen += size
