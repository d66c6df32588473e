"""The one small protocol every language-model backend speaks, and what it exchanges.

Explainers and scorers ask three things of a language model, all batched:

* ``generate(prompts, max_tokens=..., stop=...)``: the assistant's reply to each chat;
* ``next_token_logprobs(prompts, top=...)``: the log-probabilities of the reply's first
  token (detection, fuzzing and intruder read "Yes"/"No" or a digit from them);
* ``slot_logprobs(texts, slots, top=...)``: in plain text (no chat template), the
  log-probabilities of the token that starts at each character offset in ``slots``
  (the simulator reads a digit at every token of an example in one pass, as Bills et al.).

A :class:`Prompt` is a chat (role, content pairs) plus an optional ``prefill``: the start
of the assistant's reply, which small models need to answer in the expected form.
Backends: :mod:`~.local` (a model mechscope loads) and :mod:`~.http` (any
OpenAI-compatible server); tests use :mod:`~.fake`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from mechscope.errors import InputError, MechscopeError

TopLogprobs = dict[str, float]
"""The most likely tokens (as text) and their log-probabilities."""
ROLES = ("system", "user", "assistant")


class BackendError(MechscopeError):
    """A language-model backend failed: a server that does not answer or answers nonsense."""


@dataclass(frozen=True)
class Prompt:
    """A chat to send to a language model."""

    messages: tuple[tuple[str, str], ...]
    """(role, content) pairs; roles are system, user, assistant."""
    prefill: str = ""
    """The start of the assistant's reply (continued, not repeated, by the backend)."""

    def __post_init__(self) -> None:
        for role, content in self.messages:
            if role not in ROLES or not isinstance(content, str):
                raise InputError(f"Prompt.messages must be (role, text) pairs with a role in {ROLES}; "
                                 f"received ({role!r}, {type(content).__name__})")
        if not self.messages:
            raise InputError("Prompt.messages is empty; give at least one user message")

    @classmethod
    def chat(cls, *turns: tuple[str, str], prefill: str = "") -> Prompt:
        return cls(messages=tuple(turns), prefill=prefill)

    def as_openai(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


@runtime_checkable
class Backend(Protocol):
    """A language model that explainers and scorers can use."""

    name: str
    """What it is, for reports (never a secret)."""

    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] = ()) -> list[str]: ...

    def next_token_logprobs(self, prompts: Sequence[Prompt], *, top: int = 20) -> list[TopLogprobs]: ...

    def slot_logprobs(self, texts: Sequence[str], slots: Sequence[Sequence[int]], *,
                      top: int = 20) -> list[list[TopLogprobs]]: ...

    def describe(self) -> dict[str, Any]: ...


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first of the ``stop`` strings."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


def probability_of(top: Mapping[str, float], words: Sequence[str]) -> float:
    """Total probability of the tokens that read as one of ``words`` (case and spaces ignored)."""
    wanted = {w.strip().lower() for w in words}
    return sum(math.exp(lp) for token, lp in top.items() if token.strip().lower() in wanted)


def yes_probability(top: Mapping[str, float]) -> float:
    """P(yes) / (P(yes) + P(no)) from a reply's first-token log-probabilities; 0.5 if neither shows."""
    yes, no = probability_of(top, ["yes"]), probability_of(top, ["no"])
    return 0.5 if yes + no == 0 else yes / (yes + no)


def digit_distribution(top: Mapping[str, float], n: int = 10) -> list[float]:
    """Probabilities of the digits ``0..n-1`` among the top tokens, renormalised (uniform if none)."""
    probs = [probability_of(top, [str(d)]) for d in range(n)]
    total = sum(probs)
    return [1.0 / n] * n if total == 0 else [p / total for p in probs]
