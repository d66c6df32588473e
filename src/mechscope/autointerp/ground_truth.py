"""Units whose meaning is known by construction, to check scorers before trusting them.

Each indicator unit fires (activation 1) on the tokens a rule picks out and nowhere else,
computed from the store's token ids alone::

    units, truths = indicator_units(model.tokenizer, words=("file",))
    build_records(store, units, range(units.n_units), "gt/", tokenizer=model.tokenizer)
    truths[0]   # "digits and numbers"

A scorer that works ranks each unit's true explanation above the other units' (see
:func:`mechscope.autointerp.validate.validate_scorers`).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from mechscope.autointerp.units import UnitSource
from mechscope.errors import InputError

Rule = Callable[[str], bool]


def _digits(token: str) -> bool:
    return any(c.isdigit() for c in token)


def _capitalised(token: str) -> bool:
    word = token.strip()
    return len(word) > 1 and word[0].isupper() and word[1:].islower() and word.isalpha()


def _python_keyword(token: str) -> bool:
    return token.strip() in keyword.kwlist and token.strip() not in ("True", "False", "None")


def _word(word: str) -> Rule:
    return lambda token: token.strip().lower() == word.lower()


BUILT_IN: tuple[tuple[str, Rule, str], ...] = (
    ("digits", _digits, "digits and numbers"),
    ("capitalised", _capitalised, "words that start with a capital letter"),
    ("python-keywords", _python_keyword, "Python keywords such as def, return, import, for and if"),
)
"""(name, rule on a decoded token, true explanation) of the built-in indicators."""


def indicator_units(tokenizer, *, words: Sequence[str] = ("file",), module: str = "ground_truth"
                    ) -> tuple[UnitSource, list[str]]:
    """Indicator units (the built-in ones, then one per word) and their true explanations."""
    rules = [(name, rule, truth) for name, rule, truth in BUILT_IN]
    for word in words:
        if not word.strip() or " " in word.strip():
            raise InputError(f"indicator words must be single words; received {word!r}")
        rules.append((f"word-{word}", _word(word), f'the word "{word}"'))
    vocab = len(tokenizer)
    table = torch.zeros(vocab, len(rules))
    for token_id in range(vocab):
        text = tokenizer.decode([token_id])
        for j, (_, rule, _) in enumerate(rules):
            table[token_id, j] = float(rule(text))

    def activations(x: Tensor | None, token_ids: Tensor, units: Sequence[int]) -> Tensor:
        return table[token_ids.long()][:, list(units)]

    source = UnitSource(module=module, n_units=len(rules), reads=None, sparse=True, activations=activations)
    return source, [truth for _, _, truth in rules]

