"""``mechscope tasks``: a table per task, JSON reports, one-line errors."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from mechscope.cli.tasks import register

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("version")(lambda: None)  # two commands, so typer keeps the command name
    register(app)
    return app


@pytest.fixture(scope="module")
def model_dir(words, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cli") / "words"
    words.hf_model.save_pretrained(path)
    words.tokenizer.save_pretrained(path)
    return str(path)


def test_tasks_prints_a_table_and_writes_reports(app, model_dir, tmp_path):
    result = runner.invoke(app, ["tasks", model_dir, "--task", "ioi", "-t", "sva", "-n", "4", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["ioi", "sva"]
    [path] = tmp_path.glob("tasks-words-ioi-*.json")
    report = json.loads(path.read_text())
    assert report["type"] == "TaskReport" and report["n"] == 4 and report["metric"] == "logit_diff"
    assert report["options"]["tasks"] == ["ioi"] and report["options"]["n"] == 4


def test_unknown_task_is_one_line_and_exit_2(app, model_dir, tmp_path):
    result = runner.invoke(app, ["tasks", model_dir, "--task", "iio", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown task 'iio'; known names: ioi" in " ".join(result.stderr.split())
