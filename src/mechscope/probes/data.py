"""Probing data: prompts, a label for each, and where in the prompt to read it.

::

    data = load_probe_data("cities.jsonl")      # or .csv; built-in generators: make_probe_data("sva-number", model)
    data.texts[0], data.labels[0], data.positions[0].name, data.classes

A file gives one example per row: ``text``, then either ``label`` (a class: any text or
number, a classification probe) or ``value`` (a number, a regression probe), optionally
``position`` (see :class:`~mechscope.activations.positions.Position`; default ``last``)
and ``type`` (the word type Hewitt & Liang's control task assigns its random label to;
default: the tokens read)::

    {"text": "I flew to Paris", "label": "city", "position": "word:Paris"}

    text,value,position
    It cost 37 dollars,37,word:37

Splits are by example, seeded, into train / validation (regularisation is chosen
there) / test (what a result reports).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Int
from torch import Tensor

from mechscope.activations.positions import Position
from mechscope.errors import InputError

FIELDS = ("text", "label", "value", "position", "type")
_EXAMPLE = '{"text": "I flew to Paris", "label": "city", "position": "word:Paris"}'


@dataclass(frozen=True)
class ProbeData:
    """Prompts with a label (a class or a number) each, and the position to read."""

    name: str
    """Short name, e.g. ``sva-number`` or a file's stem."""
    texts: tuple[str, ...]
    """The prompts."""
    labels: Tensor
    """Class indices (long) into ``classes``, or target values (float) for regression."""
    positions: tuple[Position, ...]
    """Where each prompt is read."""
    classes: tuple[str, ...] = ()
    """Class names; empty for a regression target."""
    types: tuple[str, ...] | None = None
    """Each example's word type, to which the control task assigns a random label; None
    means the text of the tokens read."""

    def __post_init__(self) -> None:
        n = len(self.texts)
        if n < 2 or len(self.positions) != n or self.labels.shape != (n,):
            raise InputError(f"probe data needs at least 2 examples, each with one label and one position; received "
                             f"{n} texts, labels of shape {tuple(self.labels.shape)}, {len(self.positions)} positions")
        if self.types is not None and len(self.types) != n:
            raise InputError(f"probe data has {n} texts but {len(self.types)} types")
        if self.is_classification and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise InputError(f"class labels must index classes {self.classes}; received labels "
                             f"{self.labels.min().item()}..{self.labels.max().item()}")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def is_classification(self) -> bool:
        """Labels are classes (a logistic probe), not values (a ridge probe)."""
        return bool(self.classes)

    def subset(self, rows: Sequence[int] | Tensor) -> ProbeData:
        """The examples ``rows``, in that order."""
        rows = [int(i) for i in rows]
        pick = lambda values: tuple(values[i] for i in rows)  # noqa: E731
        return ProbeData(name=self.name, texts=pick(self.texts), labels=self.labels[rows],
                         positions=pick(self.positions), classes=self.classes,
                         types=None if self.types is None else pick(self.types))


@dataclass(frozen=True)
class Split:
    """Example indices of the train, validation and test parts."""

    train: Int[Tensor, "n_train"]
    val: Int[Tensor, "n_val"]
    test: Int[Tensor, "n_test"]


def split_examples(
    n: int, *, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 0, strata: Tensor | None = None
) -> Split:
    """A seeded random split of ``n`` examples; every part holds at least one. With
    ``strata`` (e.g. class labels) each stratum is split in the same proportions, so that
    no part's majority class is another's minority."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise InputError(f"split fractions are three positive numbers summing to 1 (train, val, test); "
                         f"received {fractions!r}")
    if n < 3:
        raise InputError(f"a train/val/test split needs at least 3 examples; received {n}")
    generator = torch.Generator().manual_seed(seed)
    groups = [torch.arange(n)] if strata is None else [torch.nonzero(strata == s)[:, 0] for s in strata.unique()]
    if any(len(group) < 3 for group in groups):
        groups = [torch.arange(n)]  # a stratum too small to split three ways: split all at once
    parts: list[list[Tensor]] = [[], [], []]
    for group in groups:
        order = group[torch.randperm(len(group), generator=generator)]
        n_train = max(1, min(len(group) - 2, round(fractions[0] * len(group))))
        n_val = max(1, min(len(group) - n_train - 1, round(fractions[1] * len(group))))
        for part, rows in zip(parts, (order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])):
            part.append(rows)
    train, val, test = (torch.cat(part)[torch.randperm(sum(map(len, part)), generator=generator)] for part in parts)
    return Split(train, val, test)


def load_probe_data(path: str | Path, *, name: str | None = None) -> ProbeData:
    """Examples from a ``.jsonl`` or ``.csv`` file (see the module docstring)."""
    path = Path(path)
    rows = _read(path)
    kinds = {("label" in row, "value" in row) for _, row in rows}
    if kinds not in ({(True, False)}, {(False, True)}):
        raise InputError(f"{path}: every row gives either a class 'label' or a numeric 'value' (the same on every "
                         f"row, not both); e.g. {_EXAMPLE}")
    positions, types = [], []
    for line, row in rows:
        try:
            positions.append(Position.parse(row.get("position") or "last"))
        except InputError as error:
            raise InputError(f"{path}, line {line}: {error}") from None
        types.append(row.get("type"))
    if any(t is None for t in types) and any(t is not None for t in types):
        raise InputError(f"{path}: give a 'type' on every row or on none")
    texts = tuple(row["text"] for _, row in rows)
    common = dict(name=name or path.stem, texts=texts, positions=tuple(positions),
                  types=None if types[0] is None else tuple(types))
    if "value" in rows[0][1]:
        return ProbeData(labels=torch.tensor([_number(row["value"], path, line) for line, row in rows]), **common)
    labels = [str(row["label"]) for _, row in rows]
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise InputError(f"{path}: every row has the label {classes[0]!r}; a probe needs at least two classes")
    return ProbeData(labels=torch.tensor([classes.index(label) for label in labels]), classes=classes, **common)


def _number(value, path: Path, line: int) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise InputError(f"{path}, line {line}: 'value' must be a finite number; received {value!r}")
    return number


def _read(path: Path) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise InputError(f"no such probe data file: {path}")
    if path.suffix.lower() not in (".jsonl", ".csv"):
        raise InputError(f"probe data files are .jsonl or .csv; received {path.name}")
    rows = []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            if path.suffix.lower() == ".csv":
                reader = csv.DictReader(f)
                rows = [(reader.line_num, {k: v for k, v in row.items() if v not in (None, "")}) for row in reader]
            else:
                rows = [(line, _json_row(text, path, line)) for line, text in enumerate(f, 1) if text.strip()]
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"cannot read {path} as UTF-8: {error}") from None
    if len(rows) < 2:
        raise InputError(f"{path} holds {len(rows)} rows; a probe needs at least 2, e.g. {_EXAMPLE}")
    for line, row in rows:
        unknown = sorted(set(row) - set(FIELDS))
        if unknown or not isinstance(row.get("text"), str) or not row["text"].strip():
            raise InputError(f"{path}, line {line}: expected a non-empty 'text' and the fields "
                             f"{', '.join(FIELDS)}; received {sorted(row)}. E.g. {_EXAMPLE}")
    return rows


def _json_row(text: str, path: Path, line: int) -> dict:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}, line {line}: not valid JSON ({error.msg}); expected e.g. {_EXAMPLE}") from None
    if not isinstance(row, dict):
        raise InputError(f"{path}, line {line}: expected a JSON object such as {_EXAMPLE}")
    return row
