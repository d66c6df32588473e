"""What steering does, and what it costs, measured inside whatever hooks are open.

::

    effect = target_words(model, ["I went up to my friend and said"], [" wedding", " bride"])
    effect = task_effect(model, task)            # the task's metric at its answer positions
    neutral = NeutralText.of(model)              # held-out rows of the offline corpus
    with steer(model, vector, alpha=4.0):
        effect(model), neutral.cost(model)       # (a number, (KL, perplexity))

* :func:`target_words`: the log-probability that the next token after each prompt is one of
  the target words (log of their summed probability), averaged over prompts; the
  behaviour Turner et al. count in generations, read from the distribution instead.
* :func:`task_effect`: a :class:`~mechscope.tasks.Task`'s metric (its baselines measured
  once, before any steering), averaged over its prompts.
* :meth:`NeutralText.cost`: the mean per-token KL divergence from the unsteered model's
  next-token distribution on text unrelated to the behaviour, and the text's perplexity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch
from mechscope.tasks.task import Task, single_token


@dataclass(frozen=True)
class Effect:
    """A behaviour measured on the model as it currently runs (hooks included)."""

    name: str
    """What is measured, e.g. ``log p(wedding words)`` or ``sva logit_diff``."""
    measure: Callable[[object], float]
    """``measure(model) -> number``; larger means more of the behaviour."""

    def __call__(self, model) -> float:
        with torch.no_grad():
            return float(self.measure(model))


def target_words(model, prompts: Sequence[str], words: Sequence[str], *, name: str = "") -> Effect:
    """Mean over ``prompts`` of the log-probability that the next token is one of ``words``
    (each exactly one token, with its leading space)."""
    if not prompts or not words:
        raise InputError("target_words needs at least one prompt and one target word")
    ids = torch.tensor([single_token(model, word) for word in words])
    batch = model.tokenize(list(prompts), padding_side="left")
    rows = torch.arange(len(prompts))

    def measure(m) -> float:
        logprobs = m(batch)[rows, batch.last_positions()].float().log_softmax(-1)
        return float(logprobs[:, ids.to(logprobs.device)].logsumexp(-1).mean())

    return Effect(name=name or f"log p(next token in {len(words)} target words)", measure=measure)


def task_effect(model, task: Task) -> Effect:
    """Mean of ``task``'s metric over its clean prompts (baselines measured now, unsteered)."""
    metric = task.metric_fn(model)
    rows = torch.arange(len(task))

    def measure(m) -> float:
        return float(metric(m(task.clean)[rows, task.answer_pos]).mean())

    return Effect(name=f"{task.name} {task.metric}", measure=measure)


@dataclass(frozen=True)
class NeutralText:
    """Text unrelated to the behaviour, with the unsteered model's next-token log-probabilities."""

    batch: TokenBatch
    """The rows (no padding)."""
    plain: Tensor
    """Unsteered log-probabilities (rows pos d_vocab), bfloat16 to halve their memory."""
    plain_perplexity: float
    """The unsteered model's perplexity on the rows."""

    @classmethod
    def of(cls, model, texts: Sequence[str] | None = None, *, rows: int = 8, seq_len: int = 64) -> NeutralText:
        """``rows`` held-out rows of ``texts`` (default: the offline corpus) of ``seq_len`` tokens."""
        from mechscope.corpus import default_texts, token_rows

        all_rows = token_rows(model, default_texts() if texts is None else list(texts), seq_len=seq_len,
                              split="heldout")
        if all_rows.ids.shape[0] < rows:
            raise InputError(f"the text gives {all_rows.ids.shape[0]} held-out rows of {seq_len} tokens; "
                             f"ask for fewer rows or give more text")
        batch = TokenBatch(all_rows.ids[:rows], all_rows.attention_mask[:rows]).to(model.device)
        with torch.no_grad():
            plain = model(batch).float().log_softmax(-1)
        return cls(batch=batch, plain=plain.to(torch.bfloat16), plain_perplexity=_perplexity(plain, batch))

    def cost(self, model) -> tuple[float, float]:
        """``(mean KL(unsteered ‖ now) per token in nats, perplexity now)``."""
        with torch.no_grad():
            logprobs = model(self.batch).float().log_softmax(-1)
        reference = self.plain.float()
        kl = (reference.exp() * (reference - logprobs)).sum(-1).mean()
        return float(kl), _perplexity(logprobs, self.batch)


def _perplexity(logprobs: Tensor, batch: TokenBatch) -> float:
    """exp of the mean negative log-likelihood of each next token."""
    targets = batch.ids[:, 1:]
    nll = -logprobs[:, :-1].gather(-1, targets[..., None])[..., 0]
    return float(nll.mean().exp())
