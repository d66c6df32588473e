"""Discovery and held-out prompts: find a claim on one set, check it on another.

::

    split = split_task("ioi", model, n=32)
    split.discovery, split.heldout          # IOI templates 0-7 and half the names / templates 8-15, the other half
    split.aligned                           # discovery prompts of one template (position-wise sweeps)
    split.how                               # "templates 0-7 with every second name vs templates 8-15 ..."

Built-in tasks are split along what they are made of, so a held-out prompt is not a
re-wording of a discovery one:

* ``ioi``: templates 0-7 with every second name / templates 8-15 with the other names;
* ``greater-than``: the standard template / another template ("… started in the year …
  and ended in the year …"), other seeds;
* ``sva``: template 0 / template 1 (other preposition and adverb), other seeds;
* ``factual``, ``induction`` and task files: the rows, split at random (seeded) so that
  no clean prompt appears on both sides; ``heldout=`` gives a file of its own instead.

``aligned`` is the discovery task where every prompt has the same template (position p
means the same word everywhere), for sweeps by position; for IOI it is template 0 with
the discovery names, otherwise the discovery task itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from mechscope.errors import InputError, check_int
from mechscope.hooks.tokens import TokenBatch
from mechscope.tasks.registry import TASKS, make_task
from mechscope.tasks.task import Task


@dataclass(frozen=True)
class TaskSplit:
    """Discovery and held-out versions of one behaviour."""

    discovery: Task
    """Where claims are made."""
    heldout: Task
    """Where they are checked; shares no clean prompt with ``discovery``."""
    aligned: Task
    """Discovery prompts of one template, for sweeps by position."""
    how: str
    """How the two sides differ, in words (for reports)."""


def split_task(name: str, model, *, n: int = 32, seed: int = 0, metric: str | None = None,
               heldout: str | Path | None = None) -> TaskSplit:
    """Split the task ``name`` (built-in or a file) into ``n`` discovery and ``n``
    held-out prompt pairs (a file gives what it has: half each, or all of it with ``heldout``)."""
    check_int("n", n, minimum=2)
    if heldout is not None:
        discovery, held = make_task(str(name), model), make_task(str(heldout), model)
        split = TaskSplit(discovery, held, discovery, f"the task file / the held-out file {Path(heldout).name}")
    elif name in _BY_PARTS:
        split = _BY_PARTS[name](model, n, seed)
    else:
        whole = make_task(name, model, n=2 * n, seed=seed) if name in TASKS else make_task(name, model)
        discovery, held = split_rows(whole, seed=seed)
        split = TaskSplit(discovery, held, discovery,
                          f"the {len(whole)} prompt pairs split at random (seed {seed}), no clean prompt on both sides")
    if metric is not None:
        split = TaskSplit(split.discovery.with_metric(metric), split.heldout.with_metric(metric),
                          split.aligned.with_metric(metric), split.how)
    shared = set(split.discovery.prompts) & set(split.heldout.prompts)
    if shared:
        raise InputError(f"the discovery and held-out prompts share {len(shared)} prompt(s), e.g. "
                         f"{sorted(shared)[0]!r}; held-out checks need other prompts (edit the files)")
    return split


def split_rows(task: Task, *, seed: int = 0) -> tuple[Task, Task]:
    """Two halves of ``task``'s rows, grouped by clean prompt so none is on both sides."""
    groups: dict[str, list[int]] = {}
    for row, prompt in enumerate(task.prompts or [str(i) for i in range(len(task))]):
        groups.setdefault(prompt, []).append(row)
    if len(groups) < 2:
        raise InputError(f"task {task.name!r} has {len(groups)} distinct clean prompt(s); a held-out check needs "
                         f"at least 2 (give more rows, or a held-out file)")
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    first: list[int] = []
    for key in keys:  # fill the first half up to half the rows, keeping groups whole
        if len(first) >= len(task) / 2:
            break
        first.extend(groups[key])
    second = sorted(set(range(len(task))) - set(first))
    if not second:
        second, first = first[-len(groups[keys[-1]]):], first[: -len(groups[keys[-1]])]
    return select_rows(task, sorted(first)), select_rows(task, second)


def select_rows(task: Task, rows: list[int]) -> Task:
    """The task's rows ``rows``, re-padded to their own longest prompt."""
    index = torch.tensor(rows)

    def pick(batch: TokenBatch) -> TokenBatch:
        ids, mask = batch.ids[index], batch.attention_mask[index]
        keep = mask.any(0)  # drop columns that are padding in every kept row (left padding)
        return TokenBatch(ids[:, keep], mask[:, keep])

    import dataclasses

    return dataclasses.replace(task, clean=pick(task.clean), corrupt=pick(task.corrupt), answers=task.answers[index],
                               wrong=task.wrong[index], prompts=tuple(task.prompts[i] for i in rows) if task.prompts else (),
                               corrupt_prompts=tuple(task.corrupt_prompts[i] for i in rows) if task.corrupt_prompts else ())


# ------------------------------------------------------------------ built-in splits
def _ioi(model, n: int, seed: int) -> TaskSplit:
    from mechscope.tasks.ioi import NAMES, ioi

    even, odd = NAMES[::2], NAMES[1::2]
    return TaskSplit(
        discovery=ioi(model, n=n, seed=seed, mix_templates=True, templates=range(8), names=even),
        heldout=ioi(model, n=n, seed=seed + 1, mix_templates=True, templates=range(8, 16), names=odd),
        aligned=ioi(model, n=n, seed=seed, template=0, names=even),
        how="IOI templates 0-7 with every second name / templates 8-15 with the other names",
    )


HELDOUT_GREATER_THAN = "The {noun} started in the year {start} and ended in the year {end}"


def _greater_than(model, n: int, seed: int) -> TaskSplit:
    from mechscope.tasks.greater_than import greater_than

    discovery = greater_than(model, n=n, seed=seed)
    return TaskSplit(discovery, greater_than(model, n=n, seed=seed + 1, template=HELDOUT_GREATER_THAN), discovery,
                     f"the standard template / {HELDOUT_GREATER_THAN!r}, other nouns and years")


def _sva(model, n: int, seed: int) -> TaskSplit:
    from mechscope.tasks.sva import SVA_TEMPLATES, sva

    discovery = sva(model, n=n, seed=seed, template=0)
    return TaskSplit(discovery, sva(model, n=n, seed=seed + 1, template=1), discovery,
                     f"template {SVA_TEMPLATES[0][0]!r} / {SVA_TEMPLATES[1][0]!r}, other nouns")


_BY_PARTS = {"ioi": _ioi, "greater-than": _greater_than, "sva": _sva}
"""Built-in tasks split by their parts (templates, names); the others split by rows."""
