"""examples/pairs.jsonl, the task file the README and ``--task``'s help point newcomers to, loads."""

from __future__ import annotations

import json
from pathlib import Path

from mechscope.tasks import evaluate_task, load_task, resolve_task

EXAMPLE = Path(__file__).parents[2] / "examples" / "pairs.jsonl"


def test_the_example_uses_every_field_of_the_schema():
    rows = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    assert all({"clean", "corrupt", "answer", "wrong"} <= set(row) for row in rows)
    assert any("align" in row for row in rows)


def test_the_example_loads_on_a_tiny_model(tiny):
    task = resolve_task(str(EXAMPLE), tiny)
    assert len(task) == 4 and task.metric == "logit_diff" and task.name == "pairs"


def test_the_example_loads_on_smollm2_and_the_model_does_it(smollm2):
    task = load_task(smollm2, EXAMPLE)
    report = evaluate_task(smollm2, task)
    assert report.n == 4 and report.clean_accuracy >= 0.75 and report.clean_metric > 2 > report.corrupt_metric
