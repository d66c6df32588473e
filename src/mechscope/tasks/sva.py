"""Subject–verb agreement: the verb agrees with the subject, not the nearer noun.

::

    clean    The keys near the cabinet definitely   → " have", not " has"
    corrupt  The key near the cabinet definitely    (subject number flipped; same length)

The subject's number decides the verb; an "attractor" noun of random number sits between
them (half the prompts mismatch it), as in Linzen et al.'s agreement-attraction tests.
The corruption flips the subject's number only, so the pair keeps its length and the
wrong token is exactly the corrupted prompt's verb. Half the clean subjects are singular.

Templates carry their own verb pair. The default ends with an adverb ("definitely")
because without one SmolLM2 continues "The keys near the cabinet" mostly with
punctuation or "'s", which leaves the verb far from its top prediction; after the
adverb a verb is the likely next word and has/have is the contrast the model draws.
Templates with " is"/" are" are included. Nouns are kept only if both forms are one
token after a space.
"""

from __future__ import annotations

import random

from mechscope.errors import InputError
from mechscope.tasks.task import Task
from mechscope.tasks.vocab import check_count, is_single_token

SVA_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("The {subject} near the {attractor} definitely", " has", " have"),
    ("The {subject} behind the {attractor} always", " has", " have"),
    ("Everyone knows that the {subject} near the {attractor}", " is", " are"),
    ("The {subject} of the {attractor}", " is", " are"),
)
"""``(template, singular verb, plural verb)``; the first is the default."""

NOUNS: tuple[tuple[str, str], ...] = tuple(
    tuple(pair.split(":"))
    for pair in (
        "key:keys book:books dog:dogs car:cars boy:boys girl:girls teacher:teachers author:authors "
        "student:students picture:pictures door:doors bottle:bottles doctor:doctors farmer:farmers "
        "painting:paintings letter:letters friend:friends child:children man:men woman:women house:houses "
        "window:windows table:tables cabinet:cabinets tree:trees road:roads"
    ).split()
)
"""``(singular, plural)`` nouns, used both as subjects and as attractors."""


def sva(
    model,
    *,
    n: int = 32,
    seed: int = 0,
    metric: str = "logit_diff",
    template: int | str | None = None,
    verbs: tuple[str, str] | None = None,
) -> Task:
    """Agreement prompt pairs; the corruption flips the subject's number.

    Args:
        n: number of prompt pairs.
        seed: seeds the nouns and the attractors' number.
        metric: the task's metric.
        template: an index into :data:`SVA_TEMPLATES`, or a template of your own with
            ``{subject}`` and ``{attractor}``; None is the first built-in.
        verbs: ``(singular, plural)`` verb tokens, each with its leading space; None
            takes the built-in template's pair (``(" is", " are")`` for your own template).
    """
    check_count(n)
    text, singular_verb, plural_verb = _choose(template)
    if verbs is not None:
        if not (isinstance(verbs, (tuple, list)) and len(verbs) == 2):
            raise InputError(f"verbs must be a (singular, plural) pair such as (' is', ' are'); received {verbs!r}")
        singular_verb, plural_verb = verbs
    nouns = [pair for pair in NOUNS if all(is_single_token(model.tokenizer, " " + word) for word in pair)]
    if len(nouns) < 2:
        raise InputError(
            f"agreement needs at least 2 nouns whose singular and plural are each one token after a space in "
            f"{model.name}'s tokenizer; found {len(nouns)}. Write the task as a JSONL/CSV file instead"
        )
    rng = random.Random(seed)
    clean, corrupt, answers, wrong = [], [], [], []
    for i in range(n):
        subject, attractor = rng.sample(nouns, 2)
        plural = i % 2 == 1
        fill = {"attractor": attractor[rng.random() < 0.5]}
        clean.append(text.format(subject=subject[plural], **fill))
        corrupt.append(text.format(subject=subject[not plural], **fill))
        answers.append(plural_verb if plural else singular_verb)
        wrong.append(singular_verb if plural else plural_verb)
    return Task.from_prompts(
        model, name="sva", clean=clean, corrupt=corrupt, answers=answers, wrong=wrong, metric=metric
    )


def _choose(template: int | str | None) -> tuple[str, str, str]:
    if template is None:
        return SVA_TEMPLATES[0]
    if isinstance(template, int) and not isinstance(template, bool):
        if not 0 <= template < len(SVA_TEMPLATES):
            raise InputError(f"template index must lie in [0, {len(SVA_TEMPLATES)}); received {template}")
        return SVA_TEMPLATES[template]
    if isinstance(template, str) and "{subject}" in template and "{attractor}" in template:
        try:
            template.format(subject="", attractor="")
        except (KeyError, IndexError, ValueError) as error:
            raise InputError(
                f"agreement template {template!r} uses fields other than {{subject}} and {{attractor}}: {error}"
            ) from None
        return template, " is", " are"
    raise InputError(
        f"an agreement template is an index into SVA_TEMPLATES or a string with {{subject}} and {{attractor}}, "
        f"e.g. {SVA_TEMPLATES[0][0]!r}; received {template!r}"
    )
