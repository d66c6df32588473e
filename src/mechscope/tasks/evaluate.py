"""How well a model does a task: accuracy on the clean prompts, and the metric on both runs.

::

    report = evaluate_task(model, ioi(model, n=64))
    report.clean_accuracy      # 0.95: the answer is the top next token on 95% of clean prompts
    report.clean_metric, report.corrupt_metric

Prompts run in batches of ``batch_size``; only the logits at each prompt's answer
position are kept, so memory does not grow with ``n`` beyond ``n × d_vocab``. The metric
is computed from those logits directly (no second run, unlike ``Task.metric_fn``, which
measures its baselines on the whole batch at once); a test checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch
from mechscope.results import Result
from mechscope.tasks.task import Task, answer_logits, kl_from, logit_diff, prob_diff


@dataclass(frozen=True)
class TaskReport(Result):
    """A model's clean accuracy on a task and the task's metric on clean and corrupted runs."""

    task: str
    """The task's name."""
    model: str
    """The model's name."""
    metric: str
    """The metric the means below are measured in."""
    n: int
    """Number of prompt pairs."""
    clean_accuracy: float
    """Fraction of clean prompts whose top next token is the answer."""
    margin_accuracy: float
    """Fraction of clean prompts where the answer's logit beats the wrong token's."""
    clean_metric: float
    """Mean metric over the clean prompts (``normalized`` is 1 and ``kl`` 0 here by definition)."""
    corrupt_metric: float
    """Mean metric over the corrupted prompts (``normalized`` is 0 here by definition)."""


def evaluate_task(model, task: Task, *, batch_size: int = 32) -> TaskReport:
    """Run the clean and corrupted prompts of ``task`` and summarise them."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; received {batch_size!r}")
    clean = batched_answer_logits(model, task.clean, batch_size)
    corrupt = batched_answer_logits(model, task.corrupt, batch_size)
    answers, wrong = task.answers.to(clean.device), task.wrong.to(clean.device)
    clean_values, corrupt_values = metric_values(task, clean, corrupt)
    return TaskReport(
        task=task.name,
        model=model.name,
        metric=task.metric,
        n=len(task),
        clean_accuracy=float((clean.argmax(-1) == answers).float().mean()),
        margin_accuracy=float((logit_diff(clean, answers, wrong) > 0).float().mean()),
        clean_metric=float(clean_values.mean()),
        corrupt_metric=float(corrupt_values.mean()),
    )


@torch.no_grad()
def batched_answer_logits(model, batch: TokenBatch, batch_size: int) -> Float[Tensor, "batch d_vocab"]:
    """Next-token logits at each prompt's last real token, ``batch_size`` prompts at a time."""
    chunks = []
    for start in range(0, batch.ids.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        chunks.append(answer_logits(model, TokenBatch(batch.ids[rows], batch.attention_mask[rows])).float())
    return torch.cat(chunks)


def metric_values(
    task: Task, clean: Float[Tensor, "batch d_vocab"], corrupt: Float[Tensor, "batch d_vocab"]
) -> tuple[Float[Tensor, "batch"], Float[Tensor, "batch"]]:
    """Per-prompt values of the task's metric on the clean and corrupted answer logits,
    the same numbers ``task.metric_fn(model)`` gives."""
    answers, wrong = task.answers.to(clean.device), task.wrong.to(clean.device)
    if task.metric == "logit_diff":
        return logit_diff(clean, answers, wrong), logit_diff(corrupt, answers, wrong)
    if task.metric == "prob_diff":
        return prob_diff(clean, answers, wrong), prob_diff(corrupt, answers, wrong)
    if task.metric == "kl":
        reference = clean.log_softmax(-1)
        return kl_from(reference, clean), kl_from(reference, corrupt)
    clean_diff, corrupt_diff = logit_diff(clean, answers, wrong), logit_diff(corrupt, answers, wrong)
    span = clean_diff.mean() - corrupt_diff.mean()
    if span.abs() < 1e-6:
        raise InputError(
            f"task {task.name!r}: the clean and corrupted runs give the same logit difference "
            f"({float(clean_diff.mean()):.4g}), so a normalized metric is undefined; use metric='logit_diff'"
        )
    return (clean_diff - corrupt_diff.mean()) / span, (corrupt_diff - corrupt_diff.mean()) / span
