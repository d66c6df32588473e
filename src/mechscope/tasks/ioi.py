"""Indirect object identification (Wang et al., 2022): who is the gift given to?

::

    clean    When Mary and John went to the store, John gave a drink to   → " Mary" (IO), not " John" (S)
    corrupt  When Paul and Lisa went to the store, Kevin gave a drink to  (ABC: three new names)

A template names the indirect object ``{IO}`` once and the subject ``{S}`` twice, written
in **ABBA** order (IO first); the **BABA** order swaps the first two names ("When John and
Mary went …, John gave … to"). ``order="both"`` (the default) alternates the two, so half
the prompts are of each. The corruption is Wang et al.'s **ABC** dataset: the three name
positions get three further distinct names, neither the IO nor the S, so nothing in the
corrupted prompt says who the answer is, while everything else (template, place, object)
stays. The answer is the IO, the wrong token the S.

By default every prompt of a batch uses **one** template, so that all prompts have the
same token length and position ``p`` means the same thing in each (what position-wise
patching wants). ``mix_templates=True`` draws each prompt's template from
:data:`IOI_TEMPLATES` instead; prompts then differ in length and are left-padded, which
lines up the last positions only.

Names, places and objects are kept only if they are one token after a space in the
model's tokenizer, so each pair tokenizes to equal lengths on any model.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from string import Formatter

from mechscope.errors import InputError
from mechscope.tasks.task import Task
from mechscope.tasks.vocab import check_count, single_token_words

IOI_TEMPLATES: tuple[str, ...] = (
    "When {IO} and {S} went to the {PLACE}, {S} gave a {OBJECT} to",
    "Then, {IO} and {S} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {IO} and {S} had a lot of fun at the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {IO} and {S} were working at the {PLACE}. {S} decided to give a {OBJECT} to",
    "Then, {IO} and {S} were thinking about going to the {PLACE}. {S} wanted to give a {OBJECT} to",
    "Then, {IO} and {S} had a long argument, and afterwards {S} said to",
    "After {IO} and {S} went to the {PLACE}, {S} gave a {OBJECT} to",
    "When {IO} and {S} got a {OBJECT} at the {PLACE}, {S} decided to give it to",
    "When {IO} and {S} got a {OBJECT} at the {PLACE}, {S} decided to give the {OBJECT} to",
    "While {IO} and {S} were working at the {PLACE}, {S} gave a {OBJECT} to",
    "While {IO} and {S} were commuting to the {PLACE}, {S} gave a {OBJECT} to",
    "After the lunch, {IO} and {S} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Afterwards, {IO} and {S} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {IO} and {S} had a long argument. Afterwards {S} said to",
    "The {PLACE} {IO} and {S} went to had a {OBJECT}. {S} gave it to",
    "Friends {IO} and {S} found a {OBJECT} at the {PLACE}. {S} gave it to",
)
"""Wang et al.'s templates in ABBA order, ending where the indirect object comes next.
The first is the classic "When Mary and John went to the store" prompt, the default."""

ORDERS = ("ABBA", "BABA", "both")

# Wang et al.'s name list (first names common in the US), places and objects.
NAMES = (
    "Michael Christopher Jessica Matthew Ashley Jennifer Joshua Amanda Daniel David James Robert John Joseph "
    "Andrew Ryan Brandon Jason Justin Sarah William Jonathan Stephanie Brian Nicole Nicholas Anthony Heather "
    "Eric Elizabeth Adam Megan Melissa Kevin Steven Thomas Timothy Christina Kyle Rachel Laura Lauren Amber "
    "Brittany Danielle Richard Kimberly Jeffrey Amy Crystal Michelle Tiffany Jeremy Benjamin Mark Emily Aaron "
    "Charles Rebecca Jacob Stephen Patrick Sean Erin Jamie Kelly Samantha Nathan Sara Dustin Paul Angela Tyler "
    "Scott Katherine Andrea Gregory Erica Mary Travis Lisa Kenneth Bryan Lindsey Kristen Jose Alexander Jesse "
    "Katie Lindsay Shannon Vanessa Courtney Christine Alicia Cody Allison Bradley Samuel"
).split()
PLACES = "store garden restaurant school hospital office house station".split()
OBJECTS = "ring kiss bone basketball computer necklace drink snack".split()

_NAME_SLOTS = ("IO", "S")
_FIELDS = (*_NAME_SLOTS, "PLACE", "OBJECT")


def ioi(
    model,
    *,
    n: int = 32,
    seed: int = 0,
    metric: str = "logit_diff",
    template: int | str | None = None,
    order: str = "both",
    mix_templates: bool = False,
    templates: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
) -> Task:
    """IOI prompt pairs with ABC corruption.

    Args:
        n: number of prompt pairs.
        seed: seeds every random choice (names, places, objects, templates).
        metric: the task's metric (see :data:`mechscope.tasks.METRICS`).
        template: an index into :data:`IOI_TEMPLATES`, or a template of your own in
            ABBA order with ``{IO}`` once, ``{S}`` twice (and optionally ``{PLACE}``,
            ``{OBJECT}``); None is ``IOI_TEMPLATES[0]``.
        order: ``"ABBA"``, ``"BABA"`` or ``"both"`` (alternating, half each).
        mix_templates: draw each prompt's template from all of :data:`IOI_TEMPLATES`
            (prompts are then left-padded to one length); ``template`` must be None.
        templates: with ``mix_templates``, draw only from these indices (e.g. to hold
            some templates out of a circuit's discovery set).
        names: the names to draw from (default :data:`NAMES`), e.g. a held-out half.
    """
    check_count(n)
    if order not in ORDERS:
        raise InputError(f"order must be one of {', '.join(ORDERS)}; received {order!r}")
    if mix_templates and template is not None:
        raise InputError("mix_templates=True draws from all of IOI_TEMPLATES; leave template=None with it")
    if templates is not None and not mix_templates:
        raise InputError("templates= picks among the mixed templates; pass mix_templates=True with it")
    chosen = [IOI_TEMPLATES[i] for i in templates] if templates is not None else IOI_TEMPLATES
    parsed = [_parse(t) for t in (chosen if mix_templates else [_choose(template)])]
    names = single_token_words(model, NAMES if names is None else tuple(names), min_count=5, what="IOI names")
    places = single_token_words(model, PLACES, min_count=1, what="IOI places")
    objects = single_token_words(model, OBJECTS, min_count=1, what="IOI objects")
    rng = random.Random(seed)
    clean, corrupt, answers, wrong = [], [], [], []
    for i in range(n):
        parts = rng.choice(parsed)
        io, s, *abc = rng.sample(names, 5)
        place, obj = rng.choice(places), rng.choice(objects)
        baba = order == "BABA" or (order == "both" and i % 2 == 1)
        clean.append(_fill(parts, [s, io, s] if baba else [io, s, s], place, obj))
        corrupt.append(_fill(parts, abc, place, obj))
        answers.append(" " + io)
        wrong.append(" " + s)
    return Task.from_prompts(
        model, name="ioi", clean=clean, corrupt=corrupt, answers=answers, wrong=wrong, metric=metric
    )


def _choose(template: int | str | None) -> str:
    if template is None:
        return IOI_TEMPLATES[0]
    if isinstance(template, int) and not isinstance(template, bool):
        if not 0 <= template < len(IOI_TEMPLATES):
            raise InputError(f"template index must lie in [0, {len(IOI_TEMPLATES)}); received {template}")
        return IOI_TEMPLATES[template]
    if isinstance(template, str):
        return template
    raise InputError(f"template must be an index, a template string or None; received {type(template).__name__}")


def _parse(template: str) -> list[tuple[str, str | None]]:
    """``[(literal, field), ...]``, checked: names in ABBA order, each after a space."""
    try:
        parts = [(literal, field) for literal, field, _, _ in Formatter().parse(template)]
    except ValueError as error:
        raise InputError(f"IOI template {template!r} is not a valid format string: {error}") from None
    fields = [field for _, field in parts if field is not None]
    unknown = sorted(set(fields) - set(_FIELDS))
    slots = [field for field in fields if field in _NAME_SLOTS]
    if unknown or slots != ["IO", "S", "S"]:
        raise InputError(
            f"an IOI template names {{IO}} once and then {{S}} twice (ABBA order; BABA swaps the first two), "
            f"and may use {{PLACE}} and {{OBJECT}}; received {template!r} with fields {fields}"
        )
    for literal, field in parts:
        # A name must start a new word: " Mary" is the single token the answer is checked against.
        if field in _NAME_SLOTS and not literal.endswith(" "):
            raise InputError(f"in IOI template {template!r}, put a space before every {{IO}} and {{S}}")
    return parts


def _fill(parts: list[tuple[str, str | None]], names: list[str], place: str, obj: str) -> str:
    """The template with its three name slots filled in order by ``names``."""
    out, slot = [], iter(names)
    for literal, field in parts:
        out.append(literal)
        if field in _NAME_SLOTS:
            out.append(next(slot))
        elif field == "PLACE":
            out.append(place)
        elif field == "OBJECT":
            out.append(obj)
    return "".join(out)
