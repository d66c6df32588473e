"""Contrastive pairs: prompts with a behaviour and without it, one pair per row.

::

    pairs = make_pairs("weddings", model)         # built-in; or a .jsonl/.csv file
    pairs.positive[0], pairs.negative[0]          # "I love talking about weddings", "I love talking about football"

A file gives ``positive`` and ``negative`` on each row (JSONL objects or CSV columns)::

    {"positive": "I love this film", "negative": "I hate this film"}

Built-in (:data:`PAIRS`), each seeded:

* ``weddings``: sentences about weddings against the same sentences about other topics
  (Turner et al.'s ActAdd example).
* ``sentiment``: the same short reviews with a positive and a negative adjective.
* ``sva-plural``: subject–verb agreement prompts of :mod:`mechscope.tasks.sva` with a
  plural subject against the same prompt with it singular.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mechscope.errors import InputError, check_int, closest
from mechscope.tasks.sva import SVA_TEMPLATES, sva
from mechscope.tasks.task import single_token


@dataclass(frozen=True)
class ContrastPairs:
    """Prompts with a behaviour (positive) and without it (negative), pair by pair."""

    name: str
    """Short name, e.g. ``weddings`` or a file's stem."""
    positive: tuple[str, ...]
    """Prompts showing the behaviour."""
    negative: tuple[str, ...]
    """Their counterparts, one per positive prompt."""

    def __post_init__(self) -> None:
        if not self.positive or len(self.positive) != len(self.negative):
            raise InputError(f"contrastive pairs need as many negative prompts as positive ones (at least one); "
                             f"received {len(self.positive)} and {len(self.negative)}")
        for i, text in enumerate((*self.positive, *self.negative)):
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"every prompt of a pair must be non-empty text; prompt {i} is {text!r}")

    def __len__(self) -> int:
        return len(self.positive)

    @property
    def digest(self) -> str:
        """A hash of the pairs' texts, recorded in the vectors made from them."""
        h = hashlib.blake2b(json.dumps([self.positive, self.negative]).encode(), digest_size=8)
        return h.hexdigest()

    def describe(self) -> str:
        """``name: N pairs, digest …`` (what a vector's ``source`` says)."""
        return f"{self.name}: {len(self)} pairs, digest {self.digest}"


TOPIC_TEMPLATES = ("I love talking about {}", "My favourite subject is {}", "Let me tell you about {}",
                   "All I can think about is {}", "Yesterday we discussed {}", "The book was about {}",
                   "She wrote an article about {}", "Our conversation turned to {}")
WEDDING_TOPICS = ("weddings", "the wedding", "brides and grooms", "the wedding dress", "the wedding ceremony",
                  "getting married", "the bride", "wedding rings")
OTHER_TOPICS = ("the weather", "traffic", "computers", "the economy", "football", "cooking", "the news",
                "mathematics", "gardening", "trains")
REVIEW_TEMPLATES = ("The movie was {}", "I thought the food was {}", "Honestly, the hotel was {}",
                    "The concert last night was {}", "This book is {}", "My day has been {}")
GOOD = ("wonderful", "great", "excellent", "amazing", "delightful", "fantastic")
BAD = ("terrible", "awful", "horrible", "dreadful", "miserable", "disappointing")


def _fill(name: str, templates, good, bad, *, n: int, seed: int) -> ContrastPairs:
    check_int("n", n, minimum=1)
    rng = random.Random(seed)
    positive, negative = [], []
    for _ in range(n):
        template = rng.choice(templates)
        positive.append(template.format(rng.choice(good)))
        negative.append(template.format(rng.choice(bad)))
    return ContrastPairs(name=name, positive=tuple(positive), negative=tuple(negative))


def weddings(model, *, n: int = 32, seed: int = 0) -> ContrastPairs:
    """Sentences about weddings (positive) and about other topics (negative)."""
    return _fill("weddings", TOPIC_TEMPLATES, WEDDING_TOPICS, OTHER_TOPICS, n=n, seed=seed)


def sentiment(model, *, n: int = 32, seed: int = 0) -> ContrastPairs:
    """Short reviews with a positive adjective (positive) and a negative one (negative)."""
    return _fill("sentiment", REVIEW_TEMPLATES, GOOD, BAD, n=n, seed=seed)


def sva_plural(model, *, n: int = 32, seed: int = 0) -> ContrastPairs:
    """Agreement prompts (:func:`mechscope.tasks.sva.sva`, first template): the subject
    plural (positive) and singular (negative), the rest of the prompt the same."""
    task = sva(model, n=n, seed=seed)
    plural_verb = single_token(model, SVA_TEMPLATES[0][2])
    pairs = [(c, k) if int(a) == plural_verb else (k, c)
             for c, k, a in zip(task.prompts, task.corrupt_prompts, task.answers)]
    return ContrastPairs(name="sva-plural", positive=tuple(p for p, _ in pairs), negative=tuple(q for _, q in pairs))


PAIRS: dict[str, Callable[..., ContrastPairs]] = {"weddings": weddings, "sentiment": sentiment,
                                                  "sva-plural": sva_plural}
"""Built-in pair generators by name; each takes ``(model, *, n, seed)``."""


def make_pairs(name: str | Path, model, **options) -> ContrastPairs:
    """The pairs ``name`` (a key of :data:`PAIRS`, or a ``.jsonl``/``.csv`` path)."""
    if isinstance(name, str) and name in PAIRS:
        return PAIRS[name](model, **options)
    if str(name).lower().endswith((".jsonl", ".csv")) or Path(name).is_file():
        if options:
            raise InputError(f"a pairs file takes no generator options; received {', '.join(options)}")
        return load_pairs(name)
    hint = closest(str(name), PAIRS)
    raise InputError(f"unknown pairs {name!r}; built-in: {', '.join(PAIRS)}"
                     + (f" (did you mean {hint[0]!r}?)" if hint else "") + ", or a path to a .jsonl/.csv file")


def load_pairs(path: str | Path) -> ContrastPairs:
    """Pairs from a ``.jsonl`` (objects with ``positive`` and ``negative``) or ``.csv``
    (those two columns) file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such pairs file: {path}")
    example = '{"positive": "I love this film", "negative": "I hate this film"}'
    try:
        with path.open(newline="", encoding="utf-8") as f:
            if path.suffix.lower() == ".csv":
                rows = [(reader_line, row) for reader_line, row in _csv(f)]
            elif path.suffix.lower() == ".jsonl":
                rows = [(line, json.loads(text)) for line, text in enumerate(f, 1) if text.strip()]
            else:
                raise InputError(f"pairs files are .jsonl or .csv; received {path.name}")
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON Lines ({error.msg} at line {error.lineno}); expected e.g. "
                         f"{example}") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"cannot read {path} as UTF-8: {error}") from None
    for line, row in rows:
        if not isinstance(row, dict) or set(row) != {"positive", "negative"}:
            raise InputError(f"{path}, line {line}: expected exactly 'positive' and 'negative'; received "
                             f"{sorted(row) if isinstance(row, dict) else type(row).__name__}. E.g. {example}")
    if not rows:
        raise InputError(f"{path} holds no pairs; expected one per line, e.g. {example}")
    return ContrastPairs(name=path.stem, positive=tuple(row["positive"] for _, row in rows),
                         negative=tuple(row["negative"] for _, row in rows))


def _csv(f):
    reader = csv.DictReader(f)
    for row in reader:
        yield reader.line_num, {k: v for k, v in row.items() if k is not None}
