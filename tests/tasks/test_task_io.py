"""Tasks from JSONL/CSV files: round trips, errors that name the line, alignment."""

from __future__ import annotations

import json

import pytest
import torch

from mechscope.errors import InputError
from mechscope.tasks.io import load_task, save_task
from mechscope.tasks.ioi import ioi

ROWS = [
    {"clean": "The capital of France is", "corrupt": "The capital of Italy is", "answer": " Rome", "wrong": " Berlin"},
    {"clean": "The capital of Germany is", "corrupt": "The capital of Spain is", "answer": " Berlin", "wrong": " Madrid"},
]
# "the Netherlands" against "Italy": lengths differ by one token.
UNEQUAL = {"clean": "The capital of the Netherlands is", "corrupt": "The capital of Italy is",
           "answer": " Rome", "wrong": " Madrid"}


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_round_trip(words, tmp_path, suffix):
    task = ioi(words, n=6, metric="prob_diff")
    loaded = load_task(words, save_task(words, task, tmp_path / f"pairs{suffix}"))
    assert loaded.name == "pairs" and loaded.metric == "prob_diff"
    assert torch.equal(loaded.clean.ids, task.clean.ids) and torch.equal(loaded.corrupt.ids, task.corrupt.ids)
    assert torch.equal(loaded.answers, task.answers) and torch.equal(loaded.wrong, task.wrong)
    assert loaded.prompts == task.prompts


def test_csv_keeps_leading_spaces_and_optional_columns(words, tmp_path):
    path = tmp_path / "caps.csv"
    path.write_text('clean,corrupt,answer,wrong,metric\n"The capital of France is",The capital of Italy is, Rome, Berlin,kl\n')
    task = load_task(words, path)
    assert task.metric == "kl" and len(task) == 1
    assert int(task.answers[0]) == words.tokenizer(" Rome", add_special_tokens=False)["input_ids"][0]


def test_mismatched_lengths_name_the_line_and_show_both_tokenizations(words, tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl", [ROWS[0], UNEQUAL])
    with pytest.raises(InputError) as error:
        load_task(words, path)
    message = str(error.value)
    assert "pairs.jsonl, line 2" in message
    assert "clean=['The', 'capital', 'of', 'the', 'Netherlands', 'is']" in message
    assert "corrupt=['The', 'capital', 'of', 'Italy', 'is']" in message
    assert "align='end'" in message


@pytest.mark.parametrize("how", ["argument", "row"])
def test_end_alignment_accepts_unequal_pairs(words, tmp_path, how):
    row = {**UNEQUAL, "align": "end"} if how == "row" else UNEQUAL
    path = _jsonl(tmp_path / "pairs.jsonl", [row, ROWS[1]])
    task = load_task(words, path, align="end" if how == "argument" else None)
    assert task.clean.ids.shape == task.corrupt.ids.shape == (2, 6)
    assert torch.equal(task.clean.attention_mask, task.corrupt.attention_mask)
    clean, corrupt = words.to_str_tokens(task.clean.ids[0]), words.to_str_tokens(task.corrupt.ids[0])
    assert corrupt == ["[PAD]", "The", "capital", "of", "Italy", "is"]  # filler first, ends lined up
    assert clean[-1] == corrupt[-1] and clean[0] == "The"
    assert task.clean.attention_mask[0].all()  # the filler is attended to, like text
    assert words.to_str_tokens(task.clean.ids[1])[0] == "[PAD]" and task.clean.attention_mask[1, 0] == 0


def test_end_alignment_keeps_bos_first(words, tmp_path):
    from mechscope.tasks.io import align_ends

    a, b = align_ends([1, 5, 6, 7], [1, 8, 7], filler=0, keep=1)
    assert (a, b) == ([1, 5, 6, 7], [1, 0, 8, 7])


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"clean": "a"}\nnot json\n', "line 1: 'corrupt' must be non-empty text"),
        (json.dumps(ROWS[0]) + "\nnot json\n", "line 2: not valid JSON"),
        (json.dumps(ROWS[0]) + "\n\n[1, 2]\n", "line 3: expected a JSON object"),
        (json.dumps({**ROWS[0], "corupt": "x"}) + "\n", "line 1: unknown field(s) corupt"),
        (json.dumps({**ROWS[0], "answer": " Rome Berlin"}) + "\n", "line 1: answer ' Rome Berlin' is 2 tokens"),
        (json.dumps({**ROWS[0], "metric": "kl"}) + "\n" + json.dumps({**ROWS[1], "metric": "prob_diff"}) + "\n",
         "line 2: metric 'prob_diff' differs from 'kl' on line 1"),
        (json.dumps({**ROWS[0], "metric": "accuracy"}) + "\n", "unknown metric 'accuracy'"),
        (json.dumps({**ROWS[0], "align": "start"}) + "\n", "line 1: align must be end or empty"),
        ("\n", "holds no rows"),
    ],
)
def test_bad_jsonl_names_the_line(words, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(InputError) as error:
        load_task(words, path)
    assert message in str(error.value)


def test_bad_csv_and_paths(words, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("clean,corrupt,answer\nThe capital of France is,The capital of Italy is, Rome\n")
    with pytest.raises(InputError, match="line 1: the header must name the columns .* missing wrong"):
        load_task(words, path)
    path.write_text("clean,corrupt,answer,wrong\nThe capital of France is,The capital of Italy is, Rome, Berlin,x\n")
    with pytest.raises(InputError, match="line 2: more cells than the header"):
        load_task(words, path)
    with pytest.raises(InputError, match="no such task file"):
        load_task(words, tmp_path / "missing.jsonl")
    (tmp_path / "pairs.txt").write_text("x")
    with pytest.raises(InputError, match=r"\.jsonl .* or \.csv"):
        load_task(words, tmp_path / "pairs.txt")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_an_aligned_task_round_trips(words, tmp_path, suffix):
    """A pair loaded with align='end' is saved with it, so it loads again as it was."""
    aligned = load_task(words, _jsonl(tmp_path / "pairs.jsonl", [UNEQUAL, ROWS[1]]), align="end")
    again = load_task(words, save_task(words, aligned, tmp_path / f"again{suffix}"))
    assert torch.equal(again.clean.ids, aligned.clean.ids) and torch.equal(again.corrupt.ids, aligned.corrupt.ids)


def test_undecodable_files_are_one_clear_error(words, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("clean,corrupt,answer,wrong\nCaf\xe9 is,Caf\xe9 was, Rome, Berlin\n".encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        load_task(words, path)
