"""What each built-in pair set should change, measured: the default effect of a sweep.

::

    effect = default_effect("weddings", model)     # log p(wedding words) after neutral prompts
    effect = default_effect("sva-plural", model)   # logit(plural verb) - logit(singular) on singular subjects

* ``weddings``: after eight neutral prompts, the log-probability that the next token is a
  wedding word (Turner et al.'s ActAdd example, read from the distribution).
* ``sentiment``: the same for positive adjectives after review openings.
* ``sva-plural``: on held-out agreement prompts with a *singular* subject
  (:mod:`mechscope.tasks.sva`, another seed than the pairs'), the logit of the plural
  verb minus the singular one: negative unsteered, it rises as steering makes the model
  treat the subject as plural.
"""

from __future__ import annotations

from collections.abc import Callable

from mechscope.errors import InputError
from mechscope.steering.measure import Effect, target_words, task_effect
from mechscope.tasks.sva import SVA_TEMPLATES, sva
from mechscope.tasks.task import Task

NEUTRAL_PROMPTS = ("I went up to my friend and said", "Yesterday I", "The best thing about this city is",
                   "Let me tell you a story about", "My favourite thing to do is", "I think that",
                   "She looked at him and", "Today we are going to talk about")
"""Prompts unrelated to any behaviour, where a steered model's next word is read."""
WEDDING_WORDS = (" wedding", " weddings", " bride", " married", " marriage", " groom")
POSITIVE_WORDS = (" wonderful", " great", " amazing", " beautiful", " excellent", " happy")


def weddings_effect(model, *, seed: int = 1) -> Effect:
    return target_words(model, NEUTRAL_PROMPTS, WEDDING_WORDS, name="log p(wedding words)")


def sentiment_effect(model, *, seed: int = 1) -> Effect:
    return target_words(model, NEUTRAL_PROMPTS, POSITIVE_WORDS, name="log p(positive words)")


def singular_to_plural_task(model, *, n: int = 16, seed: int = 1) -> Task:
    """Agreement prompts with a singular subject; the 'answer' is the plural verb."""
    task = sva(model, n=2 * n, seed=seed).subset(slice(0, None, 2))  # even rows are singular
    _, singular, plural = SVA_TEMPLATES[0]
    return Task.from_prompts(model, name="sva singular→plural", clean=task.prompts, corrupt=task.corrupt_prompts,
                             answers=[plural] * len(task), wrong=[singular] * len(task))


def sva_plural_effect(model, *, seed: int = 1) -> Effect:
    return task_effect(model, singular_to_plural_task(model, seed=seed))


BEHAVIOUR_EFFECTS: dict[str, Callable[..., Effect]] = {
    "weddings": weddings_effect,
    "sentiment": sentiment_effect,
    "sva-plural": sva_plural_effect,
}
"""The default effect of each built-in pair set: ``effect(model, *, seed) -> Effect``."""


def default_effect(pairs_name: str, model, *, seed: int = 1) -> Effect:
    """The effect a sweep over ``pairs_name``'s vector measures unless told otherwise."""
    if pairs_name not in BEHAVIOUR_EFFECTS:
        raise InputError(f"pairs {pairs_name!r} have no default effect (built-in: {', '.join(BEHAVIOUR_EFFECTS)}); "
                         f"name target words or a task to measure")
    return BEHAVIOUR_EFFECTS[pairs_name](model, seed=seed)
