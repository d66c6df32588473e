"""Factual recall: a subject's attribute (a country's capital, its official language).

::

    clean    The capital of France is the city of   → " Paris", not " Rome"
    corrupt  The capital of Italy is the city of    (another subject; its attribute is the wrong token)

The corruption swaps in a different subject of the same relation whose prompt has the
same token length and whose attribute differs, so the pair stays position-aligned and
the wrong token is what the corrupted prompt itself asks for. Only facts whose
attribute is one token after a space in the model's tokenizer are used; subjects may be
several tokens, as long as a partner of the same length exists.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from mechscope.errors import InputError
from mechscope.tasks.task import Task
from mechscope.tasks.vocab import check_count, is_single_token


@dataclass(frozen=True)
class Relation:
    """One kind of fact: a prompt template and its (subject, attribute) pairs."""

    template: str
    """Prompt with ``{subject}``, ending where the attribute comes next."""
    facts: tuple[tuple[str, str], ...]
    """``(subject, attribute)``; the attribute is scored as ``" " + attribute``."""


def _facts(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(pair.split(":")) for pair in text.split())


RELATIONS: dict[str, Relation] = {
    "capital": Relation(
        "The capital of {subject} is the city of",
        _facts(
            "France:Paris Italy:Rome Germany:Berlin Spain:Madrid Japan:Tokyo Russia:Moscow Egypt:Cairo "
            "England:London Greece:Athens Austria:Vienna Poland:Warsaw Ireland:Dublin Portugal:Lisbon Norway:Oslo "
            "China:Beijing Canada:Ottawa Kenya:Nairobi Peru:Lima Cuba:Havana Thailand:Bangkok Hungary:Budapest "
            "Sweden:Stockholm Denmark:Copenhagen Finland:Helsinki Turkey:Ankara Australia:Canberra Chile:Santiago "
            "Iran:Tehran Iraq:Baghdad Syria:Damascus Belgium:Brussels Netherlands:Amsterdam Switzerland:Bern "
            "Romania:Bucharest Vietnam:Hanoi Indonesia:Jakarta Philippines:Manila Morocco:Rabat Colombia:Bogota "
            "Venezuela:Caracas Scotland:Edinburgh Wales:Cardiff Israel:Jerusalem Lebanon:Beirut Afghanistan:Kabul "
            "Nepal:Kathmandu Ghana:Accra Bulgaria:Sofia Serbia:Belgrade Croatia:Zagreb Bangladesh:Dhaka "
            "Libya:Tripoli Tunisia:Tunis Qatar:Doha Uganda:Kampala Latvia:Riga Ecuador:Quito"
        ),
    ),
    "language": Relation(
        "The official language of {subject} is",
        _facts(
            "France:French Germany:German Italy:Italian Spain:Spanish Japan:Japanese China:Chinese Russia:Russian "
            "Greece:Greek Portugal:Portuguese Poland:Polish Sweden:Swedish Norway:Norwegian Finland:Finnish "
            "Turkey:Turkish Brazil:Portuguese Mexico:Spanish Egypt:Arabic Iran:Persian Israel:Hebrew Korea:Korean "
            "Vietnam:Vietnamese Thailand:Thai Hungary:Hungarian Netherlands:Dutch Denmark:Danish Ukraine:Ukrainian "
            "Indonesia:Indonesian England:English Argentina:Spanish Chile:Spanish Peru:Spanish Cuba:Spanish "
            "Colombia:Spanish Austria:German Romania:Romanian Bulgaria:Bulgarian Serbia:Serbian Croatia:Croatian "
            "Iceland:Icelandic Pakistan:Urdu Bangladesh:Bengali Syria:Arabic Iraq:Arabic Morocco:Arabic "
            "Australia:English Canada:English Wales:Welsh Lithuania:Lithuanian Armenia:Armenian Georgia:Georgian "
            "Mongolia:Mongolian Kenya:Swahili Tanzania:Swahili Albania:Albanian"
        ),
    ),
}
"""Built-in relations; pick one with ``relation=``."""


def factual(
    model,
    *,
    n: int = 32,
    seed: int = 0,
    metric: str = "logit_diff",
    relation: str = "capital",
    template: str | None = None,
) -> Task:
    """Factual-recall prompt pairs; the corruption swaps in another subject.

    Args:
        n: number of prompt pairs (facts repeat, with other corruptions, when ``n``
            exceeds the usable facts).
        seed: seeds the choice of subjects.
        metric: the task's metric.
        relation: a key of :data:`RELATIONS`.
        template: overrides the relation's template; must contain ``{subject}``.
    """
    check_count(n)
    if relation not in RELATIONS:
        raise InputError(f"unknown relation {relation!r}; expected one of {', '.join(RELATIONS)}")
    chosen = RELATIONS[relation]
    template = chosen.template if template is None else template
    if not isinstance(template, str) or "{subject}" not in template:
        raise InputError(f"a factual template contains {{subject}}, e.g. {chosen.template!r}; received {template!r}")
    partners = _partners(model, template, chosen.facts)
    if not partners:
        raise InputError(
            f"no two {relation!r} facts have single-token attributes and prompts of equal length under "
            f"{model.name}'s tokenizer; write the task as a JSONL/CSV file instead (mechscope.tasks.load_task)"
        )
    rng = random.Random(seed)
    subjects = sorted(partners)
    attribute = dict(chosen.facts)
    clean, corrupt, answers, wrong = [], [], [], []
    for _ in range(n):
        subject = rng.choice(subjects)
        other = rng.choice(partners[subject])
        clean.append(template.format(subject=subject))
        corrupt.append(template.format(subject=other))
        answers.append(" " + attribute[subject])
        wrong.append(" " + attribute[other])
    return Task.from_prompts(
        model, name=f"factual-{relation}", clean=clean, corrupt=corrupt, answers=answers, wrong=wrong, metric=metric
    )


def _partners(model, template: str, facts: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    """For each usable subject, the subjects it can be corrupted to (same prompt length,
    another attribute)."""
    usable = [(s, a) for s, a in facts if is_single_token(model.tokenizer, " " + a)]
    by_length: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for subject, attr in usable:
        length = model.to_tokens(template.format(subject=subject)).shape[1]
        by_length[length].append((subject, attr))
    partners = {}
    for group in by_length.values():
        for subject, attr in group:
            others = [s for s, a in group if a != attr]
            if others:
                partners[subject] = others
    return partners
