"""Fixed-length token batches from text, with a deterministic held-out split.

::

    for ids in token_batches(model, default_texts(), seq_len=128, batch_size=8):
        logits = model(ids)                        # ids: (8, 128)
    heldout = token_batches(model, texts, split="heldout")

The texts are tokenized and packed into one stream, documents separated by the EOS
token (as in pretraining, so a row may span the end of one document and the start of
the next), and cut into rows of ``seq_len`` tokens; the last incomplete row is dropped.

**BOS.** ``prepend_bos=None`` follows the tokenizer's habit, as ``model.tokenize`` does:
Gemma's tokenizer adds ``<bos>``, so each row is ``<bos>`` plus ``seq_len - 1`` text
tokens; SmolLM2's and GPT-2's add nothing, so each row is ``seq_len`` text tokens.
True or False forces it. Rows are always ``seq_len`` long.

**Split.** A row is held out when a hash of its text tokens falls in one bucket of
:data:`HELDOUT_EVERY` (about 1 row in 10). The split therefore depends only on the
text, ``seq_len`` and the BOS choice: not on ``seed`` or ``batch_size``, so a lens
trained with any seed is evaluated on rows it never saw, and identical rows (repeated
boilerplate) always fall on the same side. ``seed`` only shuffles the order of rows.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable, Iterator

import torch
from jaxtyping import Int
from torch import Tensor

from mechscope.errors import InputError, check_int
from mechscope.hooks.tokens import bos_prefix

SPLITS = ("train", "heldout")
HELDOUT_EVERY = 10
"""One hash bucket in this many is held out."""


def token_batches(
    model,
    texts: str | Iterable[str],
    *,
    seq_len: int = 128,
    batch_size: int = 8,
    split: str = "train",
    seed: int = 0,
    prepend_bos: bool | None = None,
) -> Iterator[Int[Tensor, "batch pos"]]:
    """Shuffled ``(batch_size, seq_len)`` id tensors (on the CPU) of one split; the last
    batch may be smaller. Arguments are checked and the text tokenized before the first
    batch is asked for."""
    check_row_args(model, seq_len=seq_len, batch_size=batch_size, split=split)
    prefix = bos_prefix(model.tokenizer, prepend_bos)
    rows = [prefix + body for body in _bodies(model, texts, seq_len - len(prefix))
            if is_heldout(body) == (split == "heldout")]
    if not rows:
        raise InputError(
            f"the text gives no {split} rows of {seq_len} tokens; give more text or a smaller seq_len "
            f"(about 1 row in {HELDOUT_EVERY} is held out)"
        )
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    return _batches([rows[i] for i in order], batch_size)


def check_row_args(model, *, seq_len: int, batch_size: int, split: str) -> None:
    """The checks every row source makes: sizes, split name, and the model's context."""
    check_int("seq_len", seq_len, minimum=2)
    check_int("batch_size", batch_size, minimum=1)
    if split not in SPLITS:
        raise InputError(f"split must be one of {', '.join(SPLITS)}; received {split!r}")
    if seq_len > model.cfg.n_ctx:
        raise InputError(f"seq_len={seq_len} exceeds {model.name}'s context of {model.cfg.n_ctx} tokens")


def is_heldout(body: list[int]) -> bool:
    """Whether a row of text tokens belongs to the held-out split (by a hash of its ids)."""
    digest = hashlib.blake2b(array("q", body).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % HELDOUT_EVERY == 0


def _bodies(model, texts: str | Iterable[str], length: int) -> list[list[int]]:
    """The packed token stream cut into rows of ``length`` text tokens."""
    stream: list[int] = []
    for ids in document_ids(model.tokenizer, texts):
        stream.extend(ids)
    return [stream[i : i + length] for i in range(0, len(stream) - length + 1, length)]


def document_ids(tokenizer, texts: str | Iterable[str]) -> Iterator[list[int]]:
    """Each text's token ids (no special tokens), followed by EOS where the tokenizer has one."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(
                f"text {i} is a {type(text).__name__}, expected a string (read files with read_text_files)"
            )
        # verbose=False: documents longer than the model's context are expected here.
        ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            ids.append(tokenizer.eos_token_id)
        yield ids


def _batches(rows: list[list[int]], batch_size: int) -> Iterator[Tensor]:
    for start in range(0, len(rows), batch_size):
        yield torch.tensor(rows[start : start + batch_size], dtype=torch.long)
