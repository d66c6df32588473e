"""Explainers: from a unit's training examples to a short explanation. One signature, a registry::

    explanations = EXPLAINERS["default"](records, backend=backend, config=ExplainConfig())

* ``default``: top and quantile-sampled examples with the firing tokens marked, a
  few-shot chat, the reply's first line (delphi's default explainer, Bills et al.'s prompt idea);
* ``contrastive``: the same plus hard negatives, texts where the unit stays off;
* ``top-tokens``: no language model: the tokens it fires on most and, where known, the
  tokens whose logits it raises most (``W_dec @ W_U``). The baseline an LM explainer must beat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mechscope.autointerp.prompts import clean_explanation, explain_prompt, mark, one_line
from mechscope.autointerp.records import UnitRecords
from mechscope.errors import InputError, check_int


@dataclass(frozen=True, kw_only=True)
class ExplainConfig:
    """How explainers show examples and read replies."""

    max_examples: int = 20
    """Activating examples shown (top ones first, then quantile-sampled ones)."""
    max_negatives: int = 5
    """Hard negatives shown by the contrastive explainer."""
    max_tokens: int = 24
    """Longest reply, in tokens."""
    n_top_tokens: int = 5
    """Tokens named by the top-tokens explainer."""

    def __post_init__(self) -> None:
        for name in ("max_examples", "max_tokens", "n_top_tokens"):
            check_int(f"ExplainConfig.{name}", getattr(self, name), minimum=1)
        check_int("ExplainConfig.max_negatives", self.max_negatives, minimum=0)


@dataclass(frozen=True)
class Explanation:
    """One unit's explanation."""

    unit: str
    """The unit's name (``{module}_latent{index}``)."""
    text: str
    """The explanation."""
    explainer: str
    """Which explainer wrote it."""


ExplainFn = Callable[..., list[Explanation]]


def _shown(records: UnitRecords, config: ExplainConfig) -> list[str]:
    examples = records.of_kind("train_top") + records.of_kind("train_quantile")
    return [mark(e, records.threshold) for e in examples[: config.max_examples]]


def _ask(prompts, records: Sequence[UnitRecords], backend, config: ExplainConfig, name: str) -> list[Explanation]:
    if backend is None:
        raise InputError(f"the {name} explainer needs a language-model backend (e.g. local:smollm2-135m)")
    replies = backend.generate(prompts, max_tokens=config.max_tokens)  # small models may open with a newline
    return [Explanation(unit=r.name, text=clean_explanation(reply) or "(no explanation)", explainer=name)
            for r, reply in zip(records, replies)]


def explain_default(records: Sequence[UnitRecords], *, backend, config: ExplainConfig = ExplainConfig()
                    ) -> list[Explanation]:
    """Ask the backend what the marked tokens of each unit's training examples share."""
    prompts = [explain_prompt(_shown(r, config)) for r in records]
    return _ask(prompts, records, backend, config, "default")


def explain_contrastive(records: Sequence[UnitRecords], *, backend, config: ExplainConfig = ExplainConfig()
                        ) -> list[Explanation]:
    """As ``default``, also showing texts where the unit stays off (hard negatives)."""
    prompts = []
    for r in records:
        negatives = [one_line(e.text) for e in r.of_kind("train_hard_negative")[: config.max_negatives]]
        if not negatives and config.max_negatives:
            raise InputError(f"{r.name} has no hard negatives; build records with n_train_hard_negatives > 0 "
                             f"(and an embedder) for the contrastive explainer")
        prompts.append(explain_prompt(_shown(r, config), negatives))
    return _ask(prompts, records, backend, config, "contrastive")


def explain_top_tokens(records: Sequence[UnitRecords], *, backend=None, config: ExplainConfig = ExplainConfig()
                       ) -> list[Explanation]:
    """No language model: the tokens each unit fires on most, and the tokens it promotes."""
    out = []
    for r in records:
        fires = _quoted(_merged(r.top_tokens), config.n_top_tokens)
        text = f"the tokens {fires}" if fires else "(never fires)"
        if r.promoted:
            text += f" (then predicts {_quoted([t for t, _ in r.promoted], config.n_top_tokens)})"
        out.append(Explanation(unit=r.name, text=text, explainer="top-tokens"))
    return out


def _merged(counts: Sequence[tuple[str, int]]) -> list[str]:
    """Token texts as a reader sees them (" the" and "the" are one word), most frequent first."""
    total: dict[str, int] = {}
    for token, count in counts:
        total[_readable(token)] = total.get(_readable(token), 0) + count
    return sorted(total, key=lambda t: -total[t])


def _readable(token: str) -> str:
    word = token.strip()
    return word if word else ("newline" if "\n" in token else "space")


def _quoted(tokens: Sequence[str], n: int) -> str:
    shown = list(dict.fromkeys(_readable(t) for t in tokens))[:n]
    return ", ".join(f'"{t}"' for t in shown)


EXPLAINERS: dict[str, ExplainFn] = {
    "default": explain_default,
    "contrastive": explain_contrastive,
    "top-tokens": explain_top_tokens,
}
"""Explainers by name; all take ``(records, *, backend, config)``."""
