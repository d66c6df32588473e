"""A Task is a behaviour: clean prompts, corrupted prompts, answers, and a metric.

Every localization technique takes one. The clean prompt elicits the behaviour, its
corruption (same length, a few tokens changed) removes it, and the metric measures how
much of it a run shows, read at each prompt's last real token::

    task = Task.from_prompts(model, name="capitals",
        clean=["The capital of France is"], corrupt=["The capital of Italy is"],
        answers=[" Paris"], wrong=[" Rome"], metric="logit_diff")
    metric = task.metric_fn(model)                  # baselines measured once
    metric(model(task.clean)[torch.arange(n), task.answer_pos])   # per-prompt values

Metrics (``metric=``):

* ``logit_diff``  logit(answer) - logit(wrong)
* ``prob_diff``   p(answer) - p(wrong)
* ``kl``          KL(clean run ‖ this run) over the next-token distribution (0 = clean)
* ``normalized``  logit_diff rescaled to 0 at the corrupted run and 1 at the clean run
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch

METRICS = ("logit_diff", "prob_diff", "kl", "normalized")

MetricFn = Callable[[Float[Tensor, "rows d_vocab"]], Float[Tensor, "rows"]]
"""Per-row metric values from the logits at each row's answer position; rows are the
prompts, or several copies of them (copy-major) in a batched patching run."""


@dataclass(frozen=True)
class Task:
    """Clean and corrupted prompts of one behaviour, with answers and a metric."""

    name: str
    """Short name, e.g. ``ioi``."""
    clean: TokenBatch
    """Clean prompts, tokenized and padded (left, so answer positions line up)."""
    corrupt: TokenBatch
    """Corrupted prompts: same shape as ``clean``, pair by pair the same length."""
    answers: Int[Tensor, "batch"]
    """The token the clean prompt should produce next."""
    wrong: Int[Tensor, "batch"]
    """The competing token (the corruption's answer, or a distractor)."""
    metric: str = "logit_diff"
    """One of :data:`METRICS`."""
    prompts: tuple[str, ...] = ()
    """The clean prompts as text (for reports)."""
    corrupt_prompts: tuple[str, ...] = ()
    """The corrupted prompts as text."""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InputError(f"unknown metric {self.metric!r}; expected one of {', '.join(METRICS)}")
        if self.clean.ids.shape != self.corrupt.ids.shape:
            raise InputError(
                f"clean and corrupted prompts must tokenize to the same shape; received "
                f"{tuple(self.clean.ids.shape)} and {tuple(self.corrupt.ids.shape)}"
            )
        if not torch.equal(self.clean.attention_mask, self.corrupt.attention_mask):
            raise InputError("each clean prompt and its corruption must have the same length (same padding)")
        n = self.clean.ids.shape[0]
        if self.answers.shape != (n,) or self.wrong.shape != (n,):
            raise InputError(
                f"expected one answer and one wrong token per prompt ({n}); received "
                f"{tuple(self.answers.shape)} and {tuple(self.wrong.shape)}"
            )

    def __len__(self) -> int:
        return self.clean.ids.shape[0]

    @property
    def answer_pos(self) -> Int[Tensor, "batch"]:
        """Each prompt's last real token: where the next-token prediction is read."""
        return self.clean.last_positions()

    def subset(self, rows: slice) -> Task:
        """The prompt pairs ``rows`` (padding kept as is, so positions still line up)."""
        pick = lambda batch: TokenBatch(batch.ids[rows], batch.attention_mask[rows])  # noqa: E731
        return dataclasses.replace(
            self, clean=pick(self.clean), corrupt=pick(self.corrupt), answers=self.answers[rows],
            wrong=self.wrong[rows], prompts=self.prompts[rows], corrupt_prompts=self.corrupt_prompts[rows],
        )

    def with_metric(self, metric: str) -> Task:
        """The same prompts scored by another metric."""
        return dataclasses.replace(self, metric=metric)

    def metric_fn(self, model) -> MetricFn:
        """The metric as a function of answer-position logits, with its baselines
        (the clean and corrupted runs) measured once on ``model``."""
        answers, wrong = self.answers.to(model.device), self.wrong.to(model.device)
        if self.metric == "logit_diff":
            return lambda logits: logit_diff(logits, answers, wrong)
        if self.metric == "prob_diff":
            return lambda logits: prob_diff(logits, answers, wrong)
        clean = answer_logits(model, self.clean)
        if self.metric == "kl":
            clean_logprobs = clean.float().log_softmax(-1)
            return lambda logits: kl_from(clean_logprobs, logits)
        corrupt = answer_logits(model, self.corrupt)
        clean_value = logit_diff(clean, answers, wrong).mean()
        corrupt_value = logit_diff(corrupt, answers, wrong).mean()
        span = clean_value - corrupt_value
        if span.abs() < 1e-6:
            raise InputError(
                f"task {self.name!r}: the clean and corrupted runs give the same logit difference "
                f"({float(clean_value):.4g}), so a normalized metric is undefined; use metric='logit_diff'"
            )
        return lambda logits: (logit_diff(logits, answers, wrong) - corrupt_value) / span

    @classmethod
    def from_prompts(
        cls,
        model,
        *,
        name: str,
        clean: Sequence[str],
        corrupt: Sequence[str],
        answers: Sequence[str],
        wrong: Sequence[str],
        metric: str = "logit_diff",
        prepend_bos: bool | None = None,
    ) -> Task:
        """Tokenize prompt pairs and answer strings; refuse pairs of different lengths."""
        if not (len(clean) == len(corrupt) == len(answers) == len(wrong)) or not clean:
            raise InputError(
                f"need as many corrupted prompts, answers and wrong answers as clean prompts (at least one); "
                f"received {len(clean)}, {len(corrupt)}, {len(answers)}, {len(wrong)}"
            )
        for i, (a, b) in enumerate(zip(clean, corrupt)):
            check_same_length(model, a, b, index=i, prepend_bos=prepend_bos)
        return cls(
            name=name,
            clean=model.tokenize(list(clean), prepend_bos=prepend_bos, padding_side="left"),
            corrupt=model.tokenize(list(corrupt), prepend_bos=prepend_bos, padding_side="left"),
            answers=torch.tensor([single_token(model, a) for a in answers]),
            wrong=torch.tensor([single_token(model, w) for w in wrong]),
            metric=metric,
            prompts=tuple(clean),
            corrupt_prompts=tuple(corrupt),
        )


def check_same_length(model, clean: str, corrupt: str, *, index: int, prepend_bos: bool | None = None) -> None:
    """Refuse a pair whose prompts tokenize to different lengths, showing both."""
    a = model.to_str_tokens(model.to_tokens(clean, prepend_bos=prepend_bos)[0])
    b = model.to_str_tokens(model.to_tokens(corrupt, prepend_bos=prepend_bos)[0])
    if len(a) != len(b):
        raise InputError(
            f"pair {index}: the clean prompt has {len(a)} tokens and its corruption {len(b)}; position-wise "
            f"patching needs equal lengths. clean={a} corrupt={b}. Reword one of them (or pass an alignment)"
        )


def single_token(model, text: str) -> int:
    """The id of ``text`` if it is exactly one token (answers must be)."""
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = [model.tokenizer.decode([i]) for i in ids]
        raise InputError(f"answer {text!r} is {len(ids)} tokens {pieces}, not one; pick a single-token answer")
    return int(ids[0])


def at_answer(logits: Tensor, answer_pos: Tensor) -> Tensor:
    """Each row's logits at its answer position: (batch, pos, vocab) → (batch, vocab)."""
    return logits[torch.arange(logits.shape[0], device=logits.device), answer_pos]


@torch.no_grad()
def answer_logits(model, batch: TokenBatch) -> Float[Tensor, "batch d_vocab"]:
    """Next-token logits at each prompt's last real token."""
    return at_answer(model(batch), batch.last_positions())


# Patching runs many copies of the batch at once (copy-major: row = copy * batch + prompt),
# so the per-prompt quantities below are tiled to the number of rows they meet.
def _tile(per_prompt: Tensor, rows: int) -> Tensor:
    n = per_prompt.shape[0]
    if rows % n:
        raise InputError(f"metric got {rows} rows of logits for a task of {n} prompts; expected a multiple of {n}")
    return per_prompt.repeat(rows // n, *([1] * (per_prompt.dim() - 1)))


def logit_diff(logits: Tensor, answers: Tensor, wrong: Tensor) -> Float[Tensor, "rows"]:
    rows = torch.arange(logits.shape[0], device=logits.device)
    n = logits.shape[0]
    return logits[rows, _tile(answers, n)].float() - logits[rows, _tile(wrong, n)].float()


def prob_diff(logits: Tensor, answers: Tensor, wrong: Tensor) -> Float[Tensor, "rows"]:
    probs = logits.float().softmax(-1)
    rows = torch.arange(logits.shape[0], device=logits.device)
    n = logits.shape[0]
    return probs[rows, _tile(answers, n)] - probs[rows, _tile(wrong, n)]


def kl_from(reference_logprobs: Tensor, logits: Tensor) -> Float[Tensor, "rows"]:
    """KL(reference ‖ logits) per row, the reference tiled over copies of the batch."""
    logprobs = logits.float().log_softmax(-1)
    reference = _tile(reference_logprobs, logprobs.shape[0])
    return (reference.exp() * (reference - logprobs)).sum(-1)
