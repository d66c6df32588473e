"""Arithmetic heuristics (Nikankin et al. 2024), step one: does the model add at all?

Nikankin et al. found that language models add with a "bag of heuristics": MLP neurons
that each fire for a range of operands, a residue modulo some number, or a pattern in
the result, whose votes together pick the answer. Studying them needs a model that adds
in the first place, so this module measures that first: two-operand addition ``a + b``
with ``a + b < max_result``, every pair, greedy answers checked digit by digit::

    accuracy = addition_accuracy(load_model("smollm2-135m"))
    accuracy.accuracy["few_shot"], accuracy.plot()

Digits are single tokens in SmolLM2's and Gemma's tokenizers, so a result has one or two
tokens. An answer is correct when, fed the prompt and the right answer, the model's top
token is the right digit at every answer position and not a digit after the last one
(exactly what greedy decoding would write). Prompts of the same token length run
together, without padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from mechscope.errors import InputError
from mechscope.hooks.hooked_model import HookedModel
from mechscope.results import Result

PROMPT_FORMATS: dict[str, str] = {
    "plain": "{a}+{b}=",
    "few_shot": "3+4=7\n12+25=37\n40+9=49\n{a}+{b}=",
}
"""Prompt templates by name; the answer follows ``=`` directly."""


def addition_pairs(max_result: int) -> list[tuple[int, int]]:
    """Every ``(a, b)`` with ``a, b >= 0`` and ``a + b < max_result``."""
    return [(a, b) for a in range(max_result) for b in range(max_result - a)]


def _digit_ids(model: HookedModel) -> list[int]:
    ids = []
    for d in range(10):
        found = model.tokenizer.encode(str(d), add_special_tokens=False)
        if len(found) != 1:
            raise InputError(f"{model.name}'s tokenizer does not give digit {d} one token ({found}); "
                             "addition_accuracy needs single-digit tokens")
        ids.append(found[0])
    return ids


def answers_correct(model: HookedModel, template: str, pairs: list[tuple[int, int]], *, batch_size: int = 64,
                    progress: bool = False) -> np.ndarray:
    """Per pair: True when greedy decoding writes exactly ``a + b`` after the prompt."""
    digits = _digit_ids(model)
    texts = [template.format(a=a, b=b) + str(a + b) for a, b in pairs]
    encoded = [model.to_tokens(text)[0] for text in texts]
    answer_lengths = [len(str(a + b)) for a, b in pairs]
    groups: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        groups.setdefault(len(ids), []).append(i)
    correct = np.zeros(len(pairs), dtype=bool)
    digit_set = torch.tensor(digits)
    chunks = [(members[i : i + batch_size]) for members in groups.values() for i in range(0, len(members), batch_size)]
    with torch.no_grad():
        for chunk in tqdm(chunks, desc="addition", disable=not progress):
            ids = torch.stack([encoded[i] for i in chunk]).to(model.device)
            keep = max(answer_lengths[i] for i in chunk) + 1
            # Only the last positions' logits: Gemma's 262k-token unembedding at every position
            # costs more than the rest of the model.
            top = model.hf_model(input_ids=ids, logits_to_keep=keep).logits.argmax(-1).cpu()  # (batch, keep)
            for row, i in enumerate(chunk):
                n = answer_lengths[i]
                predicted = top[row, -n - 1 : -1]  # predictions of the n answer digits
                after = top[row, -1]  # what follows the last digit
                correct[i] = bool(torch.equal(predicted, ids[row, -n:].cpu())) and not bool((digit_set == after).any())
    return correct


@dataclass(frozen=True)
class AdditionAccuracy(Result):
    """How often a model adds two numbers right, by prompt format."""

    model_name: str
    """The model measured."""
    max_result: int
    """Pairs with ``a + b < max_result`` (``a, b >= 0``)."""
    n_pairs: int
    """Pairs asked (all of them, or a seeded random sample)."""
    accuracy: dict[str, float]
    """Per prompt format: share of pairs answered exactly."""
    by_result_digits: dict[str, dict[str, float]]
    """Per format: accuracy for one-digit and two-digit results."""
    grid: dict[str, list[list[float]]]
    """Per format: ``grid[a][b]`` 1 correct, 0 wrong, NaN where not asked (``a + b >= max_result`` or not sampled)."""
    templates: dict[str, str]
    """The prompt templates used."""

    def plot(self) -> Figure:
        from matplotlib.figure import Figure as Fig

        names = list(self.grid)
        fig = Fig(figsize=(4.6 * len(names), 4.4))
        axes = np.atleast_1d(fig.subplots(1, len(names)))
        for ax, name in zip(axes, names):
            ax.imshow(np.array(self.grid[name], dtype=float), cmap="RdYlGn", vmin=0, vmax=1, origin="lower")
            ax.set_xlabel("b"), ax.set_ylabel("a")
            ax.set_title(f"{self.model_name}, {name}: {self.accuracy[name]:.1%} of a+b<{self.max_result}", fontsize=10)
        fig.tight_layout()
        return fig


def addition_accuracy(model: HookedModel, *, max_result: int = 100, formats: tuple[str, ...] = ("plain", "few_shot"),
                      n_pairs: int | None = None, seed: int = 0, progress: bool = True) -> AdditionAccuracy:
    """Exact-answer accuracy on ``a + b < max_result`` in each prompt format: every pair,
    or ``n_pairs`` of them drawn at random (seeded; the same pairs for every format)."""
    unknown = [f for f in formats if f not in PROMPT_FORMATS]
    if unknown:
        raise InputError(f"unknown prompt format {unknown[0]!r}; choose from {', '.join(PROMPT_FORMATS)}")
    if not 2 <= max_result <= 1000:
        raise InputError(f"max_result must be in 2 .. 1000; received {max_result}")
    pairs = addition_pairs(max_result)
    if n_pairs is not None:
        if n_pairs < 1:
            raise InputError(f"n_pairs must be at least 1 or None (every pair); received {n_pairs}")
        chosen = np.random.default_rng(seed).permutation(len(pairs))[:n_pairs]
        pairs = [pairs[i] for i in sorted(chosen)]
    accuracy, by_digits, grid = {}, {}, {}
    results = np.array([a + b for a, b in pairs])
    for name in formats:
        correct = answers_correct(model, PROMPT_FORMATS[name], pairs, progress=progress)
        accuracy[name] = float(correct.mean())
        by_digits[name] = {"one digit": float(correct[results < 10].mean()),
                           "two digits": float(correct[results >= 10].mean()) if (results >= 10).any() else float("nan")}
        table = np.full((max_result, max_result), np.nan)
        for (a, b), ok in zip(pairs, correct):
            table[a, b] = float(ok)
        grid[name] = table.tolist()  # NaN also where a pair was not sampled
    return AdditionAccuracy(model_name=model.name, max_result=max_result, n_pairs=len(pairs), accuracy=accuracy,
                            by_result_digits=by_digits, grid=grid,
                            templates={name: PROMPT_FORMATS[name] for name in formats})
