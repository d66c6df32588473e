"""Built-in probing datasets: seeded generators whose labels are known by construction.

::

    data = make_probe_data("sva-number", model, n=512, seed=0)   # or a .jsonl/.csv path

| name | label | read at |
|---|---|---|
| ``sva-number`` | the subject's number in an agreement prompt ("The keys near the cabinet definitely") | the last token (``at="subject"``: the subject) |
| ``ioi-order`` | whether the indirect object is the first or the second name of an IOI prompt | the last token |
| ``country-city`` | whether a place name is a country or a city | the name's tokens (mean) |
| ``entity-kind`` | country, city, animal or first name (four classes) | the word's tokens (mean) |
| ``digit-token`` | whether a token of the offline corpus contains a digit | that (last) token |
| ``number-value`` | the value of a number written in digits (regression) | the number's tokens (mean) |

Prompts come from the task generators in :mod:`mechscope.tasks` where one fits (SVA's
nouns and templates, IOI's prompts), so a probe and a patching experiment can look at the
same behaviour. Each generator takes ``(model, *, n, seed)`` and returns
:class:`~mechscope.probes.data.ProbeData` with balanced classes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import torch

from mechscope.activations.positions import Position
from mechscope.errors import InputError, check_int, closest
from mechscope.probes.data import ProbeData, load_probe_data
from mechscope.tasks.ioi import ioi
from mechscope.tasks.sva import NOUNS, SVA_TEMPLATES

COUNTRIES = ("France Germany Italy Spain Japan China India Brazil Canada Mexico Egypt Kenya Peru Chile Norway "
             "Sweden Poland Greece Turkey Russia Australia Argentina Nigeria Vietnam Thailand Portugal Ireland "
             "Denmark Finland Austria").split()
CITIES = ("Paris Berlin Rome Madrid Tokyo Beijing Delhi Toronto Chicago Cairo Nairobi Lima London Oslo Stockholm "
          "Warsaw Athens Istanbul Moscow Sydney Boston Lagos Hanoi Bangkok Lisbon Dublin Copenhagen Helsinki "
          "Vienna Seattle").split()
ANIMALS = ("dog cat horse rabbit tiger lion elephant mouse wolf fox bear eagle snake shark whale dolphin monkey "
           "zebra giraffe camel sheep goat owl frog").split()
PERSONS = ("Mary John Sarah Michael Jessica David Emily James Laura Robert Anna Thomas Rachel Daniel Kevin Lisa "
           "Paul Alice Peter Susan Mark Helen George Karen").split()
ENTITIES = {"country": COUNTRIES, "city": CITIES, "animal": ANIMALS, "person": PERSONS}
"""Words of each kind; every generator picks from them with a seeded RNG."""

PLACE_TEMPLATES = ("I have always wanted to visit {X}.", "She was born in {X} many years ago.",
                   "We spent the whole summer in {X}.", "The news from {X} surprised everyone.",
                   "He moved to {X} after college.", "They still talk about their trip to {X}.")
WORD_TEMPLATES = ("Here is a word: {X}.", "Next on the list is {X}.", "My note just says {X}.",
                  "The answer to the riddle was {X}.", "She wrote {X} on the board.", "The last card showed {X}.")
NUMBER_TEMPLATES = ("It cost {X} dollars.", "The town has {X} houses.", "I counted {X} birds this morning.",
                    "There were {X} people at the meeting.", "The book has {X} pages.")


def sva_number(model, *, n: int = 256, seed: int = 0, at: str = "last") -> ProbeData:
    """Agreement prompts (:mod:`mechscope.tasks.sva`'s nouns and templates, an attractor of
    random number): is the subject plural? Read at the last token (where the verb is
    predicted) or, with ``at="subject"``, at the subject. The type is the subject word."""
    if at not in ("last", "subject"):
        raise InputError(f"sva-number reads at 'last' or 'subject'; received at={at!r}")
    rng = random.Random(seed)
    texts, labels, positions, types = [], [], [], []
    for i in range(_count(n)):
        template = rng.choice(SVA_TEMPLATES)[0]
        subject, attractor = rng.sample(NOUNS, 2)
        plural = i % 2
        head = template.split("{subject}")[0]
        texts.append(template.format(subject=subject[plural], attractor=attractor[rng.random() < 0.5]))
        labels.append(plural)
        types.append(subject[plural])
        # The subject's first occurrence after the template's head: the word itself.
        start = len(head)
        positions.append(Position(rule="span", start=start, end=start + len(subject[plural]))
                         if at == "subject" else Position())
    return ProbeData(name="sva-number", texts=tuple(texts), labels=torch.tensor(labels), positions=tuple(positions),
                     classes=("singular", "plural"), types=tuple(types))


def ioi_order(model, *, n: int = 256, seed: int = 0) -> ProbeData:
    """IOI prompts (:func:`mechscope.tasks.ioi.ioi`, all templates mixed): is the indirect
    object the first name (ABBA) or the second (BABA)? Read at the last token, where the
    model is about to say it. The type is the indirect object's name."""
    task = ioi(model, n=_count(n), seed=seed, mix_templates=True, order="both")  # alternates ABBA, BABA
    types = tuple(model.tokenizer.decode([int(token)]).strip() for token in task.answers)
    return ProbeData(name="ioi-order", texts=task.prompts, labels=torch.arange(len(task)) % 2,
                     positions=(Position(),) * len(task), classes=("IO first", "IO second"), types=types)


def entity_kind(model, *, n: int = 256, seed: int = 0, kinds: tuple[str, ...] = tuple(ENTITIES)) -> ProbeData:
    """Words of ``kinds`` (keys of :data:`ENTITIES`) in neutral templates: which kind is
    the word? Read at the word's tokens (mean). The type is the word."""
    unknown = [kind for kind in kinds if kind not in ENTITIES]
    if len(set(kinds)) < 2 or unknown:
        raise InputError(f"kinds must name at least two of {', '.join(ENTITIES)}; received {kinds!r}")
    places = set(kinds) <= {"country", "city"}
    return _words(f"{'-'.join(kinds) if places else 'entity-kind'}", kinds, PLACE_TEMPLATES if places else
                  WORD_TEMPLATES, n=n, seed=seed)


def country_city(model, *, n: int = 256, seed: int = 0) -> ProbeData:
    """Country or city? (:func:`entity_kind` with two kinds, in travel sentences.)"""
    return entity_kind(model, n=n, seed=seed, kinds=("country", "city"))


def _words(name: str, kinds, templates, *, n: int, seed: int) -> ProbeData:
    rng = random.Random(seed)
    texts, labels, positions, types = [], [], [], []
    for i in range(_count(n)):
        label = i % len(kinds)
        word = rng.choice(ENTITIES[kinds[label]])
        template = rng.choice(templates)
        start = template.index("{X}")
        texts.append(template.format(X=word))
        labels.append(label)
        positions.append(Position(rule="span", start=start, end=start + len(word)))
        types.append(word)
    return ProbeData(name=name, texts=tuple(texts), labels=torch.tensor(labels), positions=tuple(positions),
                     classes=tuple(kinds), types=tuple(types))


def digit_token(model, *, n: int = 256, seed: int = 0, context: int = 24) -> ProbeData:
    """Windows of the offline corpus ending at a token: does that token contain a digit?
    Half the windows end at one that does. The label is read off the window's last token
    as the model tokenizes the window's text; the type is that token."""
    from mechscope.corpus import default_texts

    check_int("digit_token context", context, minimum=2)
    tokenizer, rng = model.tokenizer, random.Random(seed)
    ids = [i for text in default_texts() for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
    quota = {0: (_count(n) + 1) // 2, 1: n // 2}
    found: dict[int, list[tuple[str, str]]] = {0: [], 1: []}
    for end in rng.sample(range(context, len(ids)), len(ids) - context):
        text = tokenizer.decode(ids[end - context : end + 1])
        retokenized = tokenizer(text, add_special_tokens=False)["input_ids"]
        if "\ufffd" in text or not text.strip() or not retokenized:  # a window cut inside a character
            continue
        last = tokenizer.decode(retokenized[-1:])
        label = int(any(c.isdigit() for c in last))
        if len(found[label]) < quota[label]:
            found[label].append((text, last))
        if all(len(found[k]) == quota[k] for k in quota):
            break
    if any(len(found[k]) < quota[k] for k in quota):
        raise InputError(f"the offline corpus gave {len(found[1])} windows ending in a digit and {len(found[0])} "
                         f"without; ask for fewer (n={n})")
    rows = [(text, last, label) for label in (0, 1) for text, last in found[label]]
    rng.shuffle(rows)
    return ProbeData(name="digit-token", texts=tuple(r[0] for r in rows), labels=torch.tensor([r[2] for r in rows]),
                     positions=(Position(),) * len(rows), classes=("no digit", "digit"),
                     types=tuple(r[1] for r in rows))


def number_value(model, *, n: int = 256, seed: int = 0, high: int = 999) -> ProbeData:
    """Numbers 1..``high`` written in digits in short sentences: their value (a ridge
    probe's target). Read at the number's tokens (mean); the type is the number."""
    check_int("number_value high", high, minimum=2)
    rng = random.Random(seed)
    texts, values, positions = [], [], []
    for _ in range(_count(n)):
        value, template = rng.randint(1, high), rng.choice(NUMBER_TEMPLATES)
        start = template.index("{X}")
        texts.append(template.format(X=value))
        values.append(float(value))
        positions.append(Position(rule="span", start=start, end=start + len(str(value))))
    return ProbeData(name="number-value", texts=tuple(texts), labels=torch.tensor(values),
                     positions=tuple(positions), types=tuple(str(int(v)) for v in values))


def _count(n: int) -> int:
    check_int("n", n, minimum=4)
    return n


DATASETS: dict[str, Callable[..., ProbeData]] = {
    "sva-number": sva_number,
    "ioi-order": ioi_order,
    "country-city": country_city,
    "entity-kind": entity_kind,
    "digit-token": digit_token,
    "number-value": number_value,
}
"""The built-in generators, by name; each takes ``(model, *, n, seed, ...)``."""


def make_probe_data(name: str | Path, model, **options) -> ProbeData:
    """The dataset ``name`` (a key of :data:`DATASETS`, or a ``.jsonl``/``.csv`` path)."""
    if isinstance(name, str) and name in DATASETS:
        return DATASETS[name](model, **options)
    if str(name).lower().endswith((".jsonl", ".csv")) or Path(name).is_file():
        if options:
            raise InputError(f"a probe data file takes no generator options; received {', '.join(options)}")
        return load_probe_data(name)
    hint = closest(str(name), DATASETS)
    raise InputError(f"unknown probe dataset {name!r}; built-in: {', '.join(DATASETS)}"
                     + (f" (did you mean {hint[0]!r}?)" if hint else "") + ", or a path to a .jsonl/.csv file")
