"""Induction: continue a repeated sequence of random tokens (Olsson et al., 2022).

::

    clean    [bos] t1 t2 … t10  t1 t2 … t9    → t10, not a random token w
    corrupt  [bos] t1 t2 … t10  r1 r2 … r9    (second half re-drawn: no repeat to copy from)

Random tokens carry no meaning, so only an induction mechanism ("after t9 came t10
before") predicts t10. The corruption re-draws the second half from tokens absent from
the first, which breaks the repeat while keeping the length; the wrong token is another
random token found in neither half. All tokens of one prompt are distinct, so each has
a single successor to copy.

Prompts are built as token ids, not text: random tokens need not survive a round trip
through text. They are drawn from the vocabulary's plain alphabetic tokens (ASCII
letters, optionally after the tokenizer's space marker ``Ġ`` or ``▁``), which leaves
out special, byte, digit and punctuation tokens. ``prepend_bos=None`` follows the
tokenizer's habit (Gemma adds ``<bos>``, SmolLM2 does not); True or False forces it.
"""

from __future__ import annotations

import random

import torch

from mechscope.errors import InputError, check_int
from mechscope.hooks.tokens import TokenBatch, bos_prefix
from mechscope.tasks.task import Task
from mechscope.tasks.vocab import check_count

_SPACE_MARKERS = "Ġ▁"


def induction(
    model,
    *,
    n: int = 32,
    seed: int = 0,
    metric: str = "logit_diff",
    seq_len: int = 10,
    prepend_bos: bool | None = None,
) -> Task:
    """Repeated random-token prompts; the corruption breaks the repeat.

    Args:
        n: number of prompt pairs.
        seed: seeds every token drawn.
        metric: the task's metric.
        seq_len: length of the random sequence; prompts hold it once and then all but
            its last token again, so ``2 * seq_len - 1`` tokens (plus BOS).
        prepend_bos: start each prompt with BOS (None: as the tokenizer does).
    """
    check_count(n)
    check_int("seq_len", seq_len, minimum=2)
    pool = token_pool(model)
    if len(pool) < 2 * seq_len:
        raise InputError(
            f"induction with seq_len={seq_len} needs {2 * seq_len} distinct plain-word tokens; "
            f"{model.name}'s vocabulary has {len(pool)}. Use a smaller seq_len"
        )
    prefix = bos_prefix(model.tokenizer, prepend_bos)
    if len(prefix) + 2 * seq_len - 1 > model.cfg.n_ctx:
        raise InputError(f"seq_len={seq_len} makes prompts longer than {model.name}'s context of {model.cfg.n_ctx}")
    rng = random.Random(seed)
    clean, corrupt, answers, wrong = [], [], [], []
    for _ in range(n):
        drawn = rng.sample(pool, 2 * seq_len)  # distinct: the sequence, its replacement, the distractor
        first, fresh, distractor = drawn[:seq_len], drawn[seq_len : 2 * seq_len - 1], drawn[-1]
        clean.append(prefix + first + first[:-1])
        corrupt.append(prefix + first + fresh)
        answers.append(first[-1])
        wrong.append(distractor)
    clean_ids, corrupt_ids = torch.tensor(clean), torch.tensor(corrupt)
    return Task(
        name="induction",
        clean=TokenBatch(clean_ids, torch.ones_like(clean_ids)).to(model.device),
        corrupt=TokenBatch(corrupt_ids, torch.ones_like(corrupt_ids)).to(model.device),
        answers=torch.tensor(answers),
        wrong=torch.tensor(wrong),
        metric=metric,
        prompts=tuple(model.to_string(clean_ids)),
        corrupt_prompts=tuple(model.to_string(corrupt_ids)),
    )


def token_pool(model) -> list[int]:
    """Ids of the vocabulary's plain alphabetic tokens, in id order."""
    tokenizer = model.tokenizer
    special = set(tokenizer.all_special_ids)
    size = min(len(tokenizer), model.cfg.d_vocab)
    pieces = tokenizer.convert_ids_to_tokens(list(range(size)))
    pool = []
    for i, piece in enumerate(pieces):
        word = (piece or "").lstrip(_SPACE_MARKERS)
        if i not in special and len(word) >= 2 and word.isascii() and word.isalpha():
            pool.append(i)
    return pool
