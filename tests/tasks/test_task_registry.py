"""make_task: built-in names, file paths, and errors that list what is known."""

from __future__ import annotations

import json

import pytest

from mechscope.errors import InputError
from mechscope.tasks.registry import TASKS, make_task


def test_names_are_the_documented_ones():
    assert list(TASKS) == ["ioi", "greater-than", "factual", "induction", "sva"]


def test_unknown_name_lists_the_known_ones(words):
    with pytest.raises(InputError) as error:
        make_task("greater_than", words)
    message = str(error.value)
    assert "unknown task 'greater_than'; known names: ioi, greater-than, factual, induction, sva" in message
    assert "did you mean 'greater-than'?" in message and ".jsonl or .csv" in message


def test_unknown_option_lists_the_accepted_ones(words):
    with pytest.raises(InputError, match="task 'ioi' takes the options n, seed, metric, template, order, mix_templates"):
        make_task("ioi", words, relation="capital")


def test_a_path_loads_a_file(words, tmp_path):
    path = tmp_path / "caps.jsonl"
    path.write_text(json.dumps({"clean": "The capital of France is", "corrupt": "The capital of Italy is",
                                "answer": " Rome", "wrong": " Berlin"}) + "\n")
    task = make_task(str(path), words, metric="prob_diff")
    assert task.name == "caps" and task.metric == "prob_diff" and len(task) == 1
    with pytest.raises(InputError, match="no such task file"):
        make_task(str(tmp_path / "other.csv"), words)
