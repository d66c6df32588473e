"""Harvest activations at one or two hook points over a corpus into an on-disk store.

::

    store = harvest(model, "blocks.15.hook_resid_post", texts, "acts/", n_tokens=1_000_000)
    # killed? the same call again continues where it stopped

The store's layout and reading are :mod:`mechscope.activations.store`'s.

**What is harvested.** The train-split rows of :func:`mechscope.corpus.token_rows`
(packed, BOS first, shuffled by ``seed``), ``batch_size`` rows per forward pass, which
stops after the deepest point (:func:`mechscope.activations.collect.collect`); BOS tokens and
padding are dropped (:func:`mechscope.activations.collect.keep_mask` says why). The held-out rows
stay out, free for evaluation.

**Resuming.** A shard is written to a temporary file and renamed; then the manifest is
rewritten the same way. Killed at any point, the directory holds whole shards and a
manifest that lists exactly those. Rerun with the same settings and the harvest goes on
after the last listed shard: the manifest's position (model batch, tokens of it already
stored) says where, and batches are re-run with the same rows as before, so the result
equals an uninterrupted harvest token for token. A larger ``n_tokens`` extends a
finished harvest. Other settings, another corpus or another model are refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.activations.collect import check_hooks, collect, hook_width, keep_mask
from mechscope.activations.manifest import (
    DTYPES,
    FORMAT,
    MANIFEST,
    VERSION,
    HarvestSettings,
    ModelIdentity,
    StoreMismatchError,
    model_mismatch,
    read_manifest,
)
from mechscope.activations.store import ActivationStore
from mechscope.errors import InputError
from mechscope.results import write_json


def corpus_hash(texts: Sequence[str]) -> str:
    """A hash of the texts, their order and their boundaries."""
    digest = hashlib.blake2b(digest_size=16)
    for text in texts:
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else repr(text).encode()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def harvest(
    model,
    hook_names: str | Sequence[str],
    texts: str | Iterable[str],
    out_dir: str | Path,
    *,
    n_tokens: int,
    seq_len: int = 128,
    batch_size: int = 8,
    dtype: str = "float32",
    shard_tokens: int = 2**15,
    exclude_bos: bool = True,
    exclude_padding: bool = True,
    prepend_bos: bool | None = True,
    pack: bool = True,
    split: str = "train",
    seed: int = 0,
    progress: bool = True,
) -> ActivationStore:
    """Store the activations of ``n_tokens`` tokens at one or two hook points in
    ``out_dir``, continuing a partial harvest of the same settings there. Arguments are
    the fields of :class:`HarvestSettings`; ``progress`` shows a bar."""
    settings = HarvestSettings(
        hook_names=(hook_names,) if isinstance(hook_names, str) else tuple(hook_names), n_tokens=n_tokens,
        seq_len=seq_len, batch_size=batch_size, dtype=dtype, shard_tokens=shard_tokens, exclude_bos=exclude_bos,
        exclude_padding=exclude_padding, prepend_bos=prepend_bos, pack=pack, split=split, seed=seed,
    )
    names = check_hooks(model, settings.hook_names)
    texts = [texts] if isinstance(texts, str) else list(texts)
    out_dir = Path(out_dir)
    identity = ModelIdentity.of(model)
    corpus = {"texts": len(texts), "blake2b": corpus_hash(texts)}
    manifest = _resume_or_start(out_dir, model, identity, settings, corpus)
    if manifest["tokens"] == settings.n_tokens:
        return ActivationStore.open(out_dir)
    _Harvester(model, names, texts, out_dir, settings, manifest).run(progress)
    return ActivationStore.open(out_dir)


def _resume_or_start(out_dir: Path, model, identity: ModelIdentity, settings: HarvestSettings,
                     corpus: dict) -> dict[str, Any]:
    """The manifest to continue from: the one in ``out_dir`` if it matches, else a new one."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file; give a directory for the store (it is created if missing)")
    path = out_dir / MANIFEST
    if not path.exists():
        if out_dir.exists() and any(out_dir.iterdir()):
            raise InputError(
                f"{out_dir} is not empty and holds no {MANIFEST}; harvest into a new or empty directory"
            )
        widths = [{"name": name, "width": hook_width(model, name)} for name in settings.hook_names]
        return {"format": FORMAT, "version": VERSION, "model": identity.to_dict(), "hooks": widths,
                "settings": settings.to_dict(), "corpus": corpus, "shards": [], "tokens": 0,
                "position": {"batch": 0, "offset": 0}, "complete": False}
    manifest = read_manifest(out_dir)
    stored = ModelIdentity.from_dict(manifest["model"])
    if not stored.matches(identity):
        raise StoreMismatchError(model_mismatch(out_dir, stored, identity))
    old = {k: v for k, v in manifest["settings"].items() if k != "n_tokens"}
    new = {k: v for k, v in settings.to_dict().items() if k != "n_tokens"}
    if old != new:
        diffs = ", ".join(f"{k}: stored {old.get(k)!r}, asked {new.get(k)!r}" for k in sorted(new) if old.get(k) != new[k])
        raise StoreMismatchError(
            f"{out_dir} holds a harvest with other settings ({diffs}); rerun with the stored settings to "
            f"resume it, or harvest into another directory"
        )
    if {key: manifest["corpus"][key] for key in corpus} != corpus:
        raise StoreMismatchError(
            f"{out_dir} holds a harvest of another corpus ({manifest['corpus']['texts']} texts, hash "
            f"{manifest['corpus']['blake2b'][:12]}; asked: {corpus['texts']} texts, hash {corpus['blake2b'][:12]}); "
            f"pass the same texts to resume it, or harvest into another directory"
        )
    if manifest["tokens"] > settings.n_tokens:
        raise StoreMismatchError(
            f"{out_dir} already holds {manifest['tokens']:,} tokens, more than n_tokens={settings.n_tokens:,}; "
            f"ask for at least {manifest['tokens']:,} or harvest into another directory"
        )
    _remove_unlisted(out_dir, manifest)
    manifest["settings"]["n_tokens"] = settings.n_tokens
    manifest["complete"] = manifest["tokens"] == settings.n_tokens
    return manifest


def _remove_unlisted(out_dir: Path, manifest: dict[str, Any]) -> None:
    """Drop what a killed harvest may leave: temporary files, and a shard renamed into
    place before the manifest listed it (it is written again, identically)."""
    listed = {shard["file"] for shard in manifest["shards"]}
    for path in out_dir.iterdir():
        if (path.name.startswith("shard-") and path.name not in listed) or path.name.endswith(".tmp"):
            path.unlink()


class _Harvester:
    """The loop of :func:`harvest`: model batches in, whole shards and manifests out."""

    def __init__(self, model, names, texts, out_dir: Path, settings: HarvestSettings, manifest: dict) -> None:
        from mechscope.corpus import token_rows

        self.model, self.names, self.out_dir, self.s, self.manifest = model, names, out_dir, settings, manifest
        self.rows = token_rows(model, texts, seq_len=settings.seq_len, split=settings.split, seed=settings.seed,
                               prepend_bos=settings.prepend_bos, pack=settings.pack)
        self.keep = keep_mask(model, self.rows, exclude_bos=settings.exclude_bos,
                              exclude_padding=settings.exclude_padding)
        per_batch = self.keep.sum(1).split(settings.batch_size)
        self.ends = torch.stack([counts.sum() for counts in per_batch]).cumsum(0)
        """Kept tokens up to the end of each model batch."""
        available = int(self.ends[-1])
        if available < settings.n_tokens:
            raise InputError(
                f"the corpus gives {available:,} {settings.split} tokens (after dropping BOS and padding), "
                f"fewer than n_tokens={settings.n_tokens:,}; give more text (e.g. --corpus large, or "
                f"mechscope.corpus.stdlib_texts()) or ask for fewer tokens"
            )
        manifest["corpus"]["rows"] = len(self.rows.ids)
        manifest["corpus"]["available_tokens"] = available

    def run(self, progress: bool) -> None:
        s, manifest = self.s, self.manifest
        # Written before the first shard, so that a harvest killed at once leaves a
        # directory that the next run recognises as its own.
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.out_dir / MANIFEST, manifest)
        pending: list[list[Tensor]] = []
        n_pending = 0
        first, skip = manifest["position"]["batch"], manifest["position"]["offset"]
        bar = tqdm(total=s.n_tokens, initial=manifest["tokens"], unit="tok", unit_scale=True,
                   desc=f"harvest {', '.join(self.names)}", disable=not progress)
        try:
            for b in range(first, len(self.ends)):
                parts = self._batch(b)
                parts = [part[skip:] for part in parts]  # tokens stored before an interruption
                skip = 0
                pending.append(parts)
                n_pending += len(parts[0])
                bar.update(min(len(parts[0]), s.n_tokens - bar.n))
                while manifest["tokens"] < s.n_tokens:
                    size = min(s.shard_tokens, s.n_tokens - manifest["tokens"])
                    if n_pending < size:
                        break
                    joined = [torch.cat(column) for column in zip(*pending)]
                    self._write([column[:size] for column in joined])
                    pending, n_pending = [[column[size:] for column in joined]], n_pending - size
                if manifest["tokens"] == s.n_tokens:
                    return
        finally:
            bar.close()

    def _batch(self, b: int) -> list[Tensor]:
        """Activations, token ids and locations of the kept tokens of model batch ``b``."""
        from mechscope.hooks.tokens import TokenBatch

        rows = slice(b * self.s.batch_size, (b + 1) * self.s.batch_size)
        batch = TokenBatch(self.rows.ids[rows], self.rows.attention_mask[rows])
        keep = self.keep[rows]
        acts = collect(self.model, self.names, batch, keep)
        where = keep.nonzero()  # row-major, the order of tensor[keep]
        where[:, 0] += rows.start
        dtype = DTYPES[self.s.dtype]
        return [*(a.to(dtype) for a in acts), batch.ids[keep].to(torch.int32), where.to(torch.int32)]

    def _write(self, columns: list[Tensor]) -> None:
        manifest = self.manifest
        file = f"shard-{len(manifest['shards']):05d}.safetensors"
        tensors = dict(zip([*self.names, "token_ids", "locations"], (c.contiguous() for c in columns)))
        tmp = self.out_dir / f".{file}.tmp"
        save_file(tensors, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, self.out_dir / file)
        manifest["shards"].append({"file": file, "tokens": len(columns[0])})
        manifest["tokens"] += len(columns[0])
        batch = int(torch.searchsorted(self.ends, manifest["tokens"], right=True))
        before = int(self.ends[batch - 1]) if batch > 0 else 0
        manifest["position"] = {"batch": batch, "offset": manifest["tokens"] - before}
        manifest["complete"] = manifest["tokens"] == self.s.n_tokens
        write_json(self.out_dir / MANIFEST, manifest)


# ----------------------------------------------------------------------- reading
