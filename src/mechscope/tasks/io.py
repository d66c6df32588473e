"""Tasks from your own files: rows of clean prompt, corrupted prompt, answer, wrong answer.

JSONL, one object per line::

    {"clean": "The capital of France is", "corrupt": "The capital of Italy is", "answer": " Paris", "wrong": " Rome"}

or CSV with a header row (keep the answer's leading space inside the field)::

    clean,corrupt,answer,wrong
    The capital of France is,The capital of Italy is, Paris, Rome

``task = load_task(model, "capitals.jsonl")``. Answers are text that must be exactly one
token, usually with its leading space. Optional columns: ``metric`` (one of
:data:`~mechscope.tasks.METRICS`, the same on every row that gives it) and ``align``.

**Alignment.** Position-wise patching pairs position p of the clean run with position p
of the corrupted run, so a pair whose prompts tokenize to different lengths is refused,
naming its line and showing both tokenizations. ``align="end"`` (for the whole file, or
on one row) accepts such a pair by lining the two prompts up at their *ends*: filler
tokens (the tokenizer's pad token, else its EOS) go at the start of the shorter one,
after BOS, and are attended to like text::

    clean    The  Eiff  el  Tower  is  in          (6 tokens)
    corrupt  <pad>  The  Col  osseum  is  in       (5 tokens + 1 filler)

Every position counted from the end then matches: the answer position and the words
after the part that differs. Masking the filler out instead would give the two runs
different attention masks, which :class:`Task` refuses, because a patched activation
would then land on a position the other run does not attend to.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from mechscope.errors import InputError
from mechscope.hooks.tokens import batch_from_ids, bos_prefix, pad_id
from mechscope.results import write_text_atomic
from mechscope.tasks.task import METRICS, Task, check_same_length, single_token

REQUIRED = ("clean", "corrupt", "answer", "wrong")
OPTIONAL = ("metric", "align")
ALIGNMENTS = ("end",)
_EXAMPLE = (
    '{"clean": "The capital of France is", "corrupt": "The capital of Italy is", "answer": " Paris", "wrong": " Rome"}'
)


def load_task(
    model,
    path: str | Path,
    *,
    name: str | None = None,
    metric: str | None = None,
    align: str | None = None,
) -> Task:
    """Read a task from a ``.jsonl`` or ``.csv`` file.

    Args:
        name: the task's name (default: the file name without its suffix).
        metric: overrides the file's ``metric`` column (default ``logit_diff``).
        align: ``"end"`` to accept pairs of different token lengths (see the module
            docstring); a row's own ``align`` value takes precedence.
    """
    path = Path(path)
    rows = read_rows(path)
    metric = metric or _file_metric(rows, path)
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    prefix = len(bos_prefix(model.tokenizer, None))
    clean, corrupt, answers, wrong = [], [], [], []
    for index, (line, row) in enumerate(rows):
        where = f"{path}, line {line}"
        a, b = _tokens(model, row["clean"]), _tokens(model, row["corrupt"])
        row_align = row.get("align") or align
        if row_align not in (None, *ALIGNMENTS):
            raise InputError(f"{where}: align must be {' or '.join(ALIGNMENTS)} or empty; received {row_align!r}")
        if len(a) != len(b):
            if row_align is None:
                try:
                    check_same_length(model, row["clean"], row["corrupt"], index=index)
                except InputError as error:
                    raise InputError(f"{where}: {error}; to accept the pair, pass align='end'") from None
            a, b = align_ends(a, b, filler=pad_id(model.tokenizer), keep=prefix)
        clean.append(a)
        corrupt.append(b)
        answers.append(_answer(model, row["answer"], where))
        wrong.append(_answer(model, row["wrong"], where))
    pad = pad_id(model.tokenizer)
    return Task(
        name=name or path.stem,
        clean=batch_from_ids(clean, pad_id=pad).to(model.device),
        corrupt=batch_from_ids(corrupt, pad_id=pad).to(model.device),
        answers=torch.tensor(answers),
        wrong=torch.tensor(wrong),
        metric=metric,
        prompts=tuple(row["clean"] for _, row in rows),
        corrupt_prompts=tuple(row["corrupt"] for _, row in rows),
    )


def align_ends(a: list[int], b: list[int], *, filler: int, keep: int = 0) -> tuple[list[int], list[int]]:
    """Make two token lists equally long by inserting ``filler`` into the shorter one after
    its first ``keep`` tokens (BOS), so that their ends line up."""
    short, long = (a, b) if len(a) < len(b) else (b, a)
    padded = short[:keep] + [filler] * (len(long) - len(short)) + short[keep:]
    return (padded, b) if short is a else (a, padded)


def save_task(model, task: Task, path: str | Path) -> Path:
    """Write ``task``'s prompts and answers as a ``.jsonl`` or ``.csv`` file that
    :func:`load_task` reads back (built from text; induction's token-id prompts may not
    survive the round trip through text)."""
    path = Path(path)
    if not task.prompts or len(task.corrupt_prompts) != len(task.prompts):
        raise InputError(f"task {task.name!r} keeps no prompt texts, so it cannot be written as a file")
    rows = []
    for c, k, a, w in zip(task.prompts, task.corrupt_prompts, task.answers, task.wrong):
        row = {"clean": c, "corrupt": k, "answer": _answer_text(model, int(a)),
               "wrong": _answer_text(model, int(w)), "metric": task.metric, "align": ""}
        if len(_tokens(model, c)) != len(_tokens(model, k)):
            row["align"] = "end"  # loaded with align="end", so it must be saved so too
        rows.append(row)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise InputError(f"task files are .jsonl or .csv; received {path.name}")
    if suffix == ".jsonl":
        text = "".join(json.dumps({key: value for key, value in row.items() if value}) + "\n" for row in rows)
    else:
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=[*REQUIRED, *OPTIONAL])
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    return write_text_atomic(path, text)


def _answer_text(model, token: int) -> str:
    """Text that encodes back to exactly ``token`` (SentencePiece decoders may drop the
    leading space of a lone token, which would reload as another token)."""
    text = model.tokenizer.decode([token])
    for candidate in (text, " " + text):
        ids = model.tokenizer(candidate, add_special_tokens=False)["input_ids"]
        if ids == [token]:
            return candidate
    raise InputError(f"answer token {token} ({text!r}) does not survive a round trip through text; "
                     f"keep the task in memory or pick another answer")


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for every row of a task file, each row checked."""
    if not path.is_file():
        raise InputError(f"no such task file: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise InputError(
            f"task files are .jsonl (one JSON object per line) or .csv (with a header); received {path.name}"
        )
    try:
        with path.open(newline="", encoding="utf-8") as f:
            raw = _jsonl_rows(f, path) if suffix == ".jsonl" else _csv_rows(f, path)
            rows = [(line, _checked(row, f"{path}, line {line}")) for line, row in raw]
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"cannot read {path} as UTF-8 {suffix[1:].upper()}: {error}; save it as UTF-8 text") from None
    if not rows:
        raise InputError(f"{path} holds no rows; expected one pair per line, e.g. {_EXAMPLE}")
    return rows


def _jsonl_rows(f, path: Path):
    for line, text in enumerate(f, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(
                f"{path}, line {line}: not valid JSON ({error.msg}); expected an object such as {_EXAMPLE}"
            ) from None
        if not isinstance(row, dict):
            raise InputError(
                f"{path}, line {line}: expected a JSON object such as {_EXAMPLE}; received {type(row).__name__}"
            )
        yield line, row


def _csv_rows(f, path: Path):
    reader = csv.DictReader(f)
    missing = [field for field in REQUIRED if field not in (reader.fieldnames or [])]
    if missing:
        raise InputError(
            f"{path}, line 1: the header must name the columns {', '.join(REQUIRED)} (optionally "
            f"{', '.join(OPTIONAL)}); missing {', '.join(missing)}, received {reader.fieldnames}"
        )
    for row in reader:
        if None in row:  # more cells than header columns
            raise InputError(
                f"{path}, line {reader.line_num}: more cells than the header's {len(reader.fieldnames)} columns; "
                f"quote cells that contain commas"
            )
        yield reader.line_num, {k: v for k, v in row.items() if v is not None and v != ""}


def _checked(row: dict, where: str) -> dict[str, str]:
    unknown = sorted(set(row) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise InputError(
            f"{where}: unknown field(s) {', '.join(unknown)}; expected {', '.join(REQUIRED)} "
            f"and optionally {', '.join(OPTIONAL)}"
        )
    for field in REQUIRED:
        value = row.get(field)
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}: {field!r} must be non-empty text; received {value!r}. E.g. {_EXAMPLE}")
    for field in OPTIONAL:
        if field in row and not isinstance(row[field], str):
            raise InputError(f"{where}: {field!r} must be text; received {row[field]!r}")
    return row


def _file_metric(rows: Sequence[tuple[int, dict]], path: Path) -> str:
    given = [(line, row["metric"]) for line, row in rows if row.get("metric")]
    for line, value in given:
        if value != given[0][1]:
            raise InputError(
                f"{path}, line {line}: metric {value!r} differs from {given[0][1]!r} on line {given[0][0]}; "
                f"a task has one metric, so give the same one on every row (or pass metric=)"
            )
    return given[0][1] if given else "logit_diff"


def _tokens(model, text: str) -> list[int]:
    return model.to_tokens(text)[0].tolist()


def _answer(model, text: str, where: str) -> int:
    try:
        return single_token(model, text)
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
