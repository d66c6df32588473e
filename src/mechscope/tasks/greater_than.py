"""Greater-than (Hanna et al., 2023): an end year must come after the start year.

Hanna et al. prompt GPT-2 with "The war lasted from the year 1732 to the year 17" and
score the probability of the two-digit tokens YY > 32 against YY <= 32; the corruption
starts in year 1701, after which every YY is valid. That design needs two-digit tokens.

**Adaptation to tokenizers that split digits** (SmolLM2, Gemma, Llama 2, Mistral, Qwen).
There the next token after "… to the year 17" is the *tens* digit alone, and a tens
digit equal to the start's (3 in 1732) is neither right nor wrong: 1735 is valid, 1731
is not. So we reveal the tens digit too, and ask for the ones digit::

    clean    The war lasted from the year 1738 to the year 173   → "9" (> 8), not "7" (< 8)
    corrupt  The war lasted from the year 1730 to the year 173

The end year then shares the start's century and decade, and the next token alone
decides correctness: any digit above the start's ones digit ``d`` is right, any at or
below it wrong, exactly Hanna et al.'s split of the continuations into two sets. A Task
has one answer and one wrong token per prompt, so we take the nearest digit on each
side, ``d + 1`` and ``d - 1`` (``d`` is drawn from 1..8 so both exist); their logit
difference is the single-token version of Hanna et al.'s probability difference. The
corruption sets the start's ones digit to 0, the analogue of their year 01: every
continuation 1..9 is then valid, so the prompt no longer separates ``d + 1`` from
``d - 1`` (unless ``d - 1`` is 0), and the pair keeps one token length.

**Tokenizers with two-digit tokens** (GPT-2) get Hanna et al.'s original design: the
prompt ends with the century, the answer is the token ``YY + 1`` and the wrong one
``YY - 1``, the corruption starts in year XX01; only years whose tokenization is
``[" XX", "YY"]`` are used. Any other way of splitting years is refused.

Nouns (Hanna et al.'s list) and centuries 11–17 are drawn at random; nouns are kept
only if they are one token after a space.
"""

from __future__ import annotations

import random

from mechscope.errors import InputError
from mechscope.tasks.task import Task
from mechscope.tasks.vocab import check_count, single_token_words

GREATER_THAN_TEMPLATE = "The {noun} lasted from the year {start} to the year {end}"
"""``{start}`` is the full start year, ``{end}`` the part of the end year already given."""

CENTURIES = tuple(range(11, 18))

NOUNS = (
    "abduction accord affair agreement appraisal assaults assessment attack attempts campaign captivity case "
    "challenge chaos clash collaboration coma competition confrontation consequence conspiracy construction "
    "consultation contact contract convention cooperation custody deal decline decrease demonstrations "
    "development disagreement disorder dispute domination dynasty effect effort employment endeavor engagement "
    "epidemic evaluation exchange existence expansion expedition experiments fall fame flights friendship growth "
    "hardship hostility illness impact imprisonment improvement incarceration increase insurgency invasion "
    "investigation journey kingdom marriage modernization negotiation notoriety obstruction operation order "
    "outbreak outcome overhaul patrols pilgrimage plague plan practice process program progress project pursuit "
    "quest raids reforms reign relationship retaliation riot rise rivalry romance rule sanctions shift siege "
    "slump stature stint strikes study test testing tests therapy tour tradition treaty trial trip unemployment "
    "voyage war warfare work"
).split()


def greater_than(
    model,
    *,
    n: int = 32,
    seed: int = 0,
    metric: str = "logit_diff",
    template: str | None = None,
) -> Task:
    """Greater-than prompt pairs, adapted to how the tokenizer splits years.

    Args:
        n: number of prompt pairs.
        seed: seeds the nouns, centuries and years.
        metric: the task's metric.
        template: a template with ``{noun}``, ``{start}`` and ``{end}`` (ending with
            ``{end}``); None is :data:`GREATER_THAN_TEMPLATE`.
    """
    check_count(n)
    template = GREATER_THAN_TEMPLATE if template is None else template
    if not isinstance(template, str) or not template.endswith("{end}") or "{start}" not in template:
        raise InputError(
            f"a greater-than template contains {{start}} and ends with {{end}} (e.g. {GREATER_THAN_TEMPLATE!r}); "
            f"received {template!r}"
        )
    split = year_split(model)
    nouns = single_token_words(model, NOUNS, min_count=1, what="greater-than nouns")
    years = None if split == "digits" else _pair_years(model)
    rng = random.Random(seed)
    clean, corrupt, answers, wrong = [], [], [], []
    for _ in range(n):
        noun = rng.choice(nouns)
        if split == "digits":
            century = rng.choice(CENTURIES)
            decade, d = rng.randrange(10), rng.randint(1, 8)
            start, corrupt_start, end = f"{century}{decade}{d}", f"{century}{decade}0", f"{century}{decade}"
            answer, distractor = str(d + 1), str(d - 1)
        else:
            century, yy = rng.choice(years)
            start, corrupt_start, end = f"{century}{yy:02d}", f"{century}01", f"{century}"
            answer, distractor = f"{yy + 1:02d}", f"{yy - 1:02d}"
        try:
            clean.append(template.format(noun=noun, start=start, end=end))
            corrupt.append(template.format(noun=noun, start=corrupt_start, end=end))
        except (KeyError, IndexError, ValueError) as error:
            raise InputError(f"greater-than template {template!r} uses an unknown field: {error}") from None
        answers.append(answer)
        wrong.append(distractor)
    return Task.from_prompts(
        model, name="greater-than", clean=clean, corrupt=corrupt, answers=answers, wrong=wrong, metric=metric
    )


def year_split(model) -> str:
    """``"digits"`` if the tokenizer writes " 1732" one digit per token, ``"pairs"`` if
    as " 17" + "32" (GPT-2); anything else is refused."""
    pieces = _digit_pieces(model, " 1732")
    if pieces == ["1", "7", "3", "2"]:
        return "digits"
    if pieces == ["17", "32"]:
        return "pairs"
    raise InputError(
        f"greater-than needs a tokenizer that splits years into single digits (SmolLM2, Gemma) or into two-digit "
        f"pairs (GPT-2); {model.name}'s splits ' 1732' into {pieces}"
    )


def _digit_pieces(model, text: str) -> list[str]:
    """The non-blank tokens of ``text``, as text."""
    tokenizer = model.tokenizer
    pieces = [tokenizer.decode([i]).strip() for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
    return [piece for piece in pieces if piece]


def _pair_years(model) -> list[tuple[int, int]]:
    """``(century, YY)`` whose start year, corrupted start year and answers tokenize as two-digit pairs."""
    pairs = {f"{yy:02d}" for yy in range(100) if _digit_pieces(model, f"{yy:02d}") == [f"{yy:02d}"]}
    usable = [
        (century, yy)
        for century in CENTURIES
        for yy in range(2, 99)
        if _digit_pieces(model, f" {century}{yy:02d}") == [str(century), f"{yy:02d}"]
        and _digit_pieces(model, f" {century}01") == [str(century), "01"]
        and {f"{yy - 1:02d}", f"{yy + 1:02d}"} <= pairs
    ]
    if not usable:
        raise InputError(f"{model.name}'s tokenizer splits no year into two-digit pairs the greater-than task can use")
    return usable
