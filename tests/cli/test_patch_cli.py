"""mechscope patch: a sweep from the command line, written as JSON and PNG."""

from __future__ import annotations

import json

import pytest
from tiny import tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("patch")
    model_dir = root / "tiny-llama"
    tiny_hf_model("llama-gqa").save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    rows = [{"clean": "when mary and john went to the store , john gave a drink to",
             "corrupt": "when bob and alice went to the store , tom gave a drink to", "answer": " mary", "wrong": " john"},
            {"clean": "the cat sat on the red mat", "corrupt": "the dog sat on the red mat", "answer": " big",
             "wrong": " small"}]
    task_file = root / "pairs.jsonl"
    task_file.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return str(model_dir), str(task_file), root / "out"


@pytest.mark.parametrize("what", ["resid", "heads", "mlp.hook_post"])
def test_patch_writes_json_and_png(files, what):
    model_dir, task_file, out = files
    result = runner.invoke(app, ["patch", model_dir, "--task", task_file, "--what", what, "--metric", "logit_diff",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir() if what in p.name)
    assert [p.split(".")[-1] for p in written] == ["json", "png"]
    data = json.loads((out / written[0]).read_text())
    assert data["type"] == "PatchingResult" and data["method"] == "exact"


@pytest.mark.parametrize(
    "args, message",
    [(["--task", "nope"], "unknown task 'nope'"), (["--what", "everything"], "unknown sweep 'everything'"),
     (["--what", "mlp.hook_psot"], "unknown hook point 'blocks.0.mlp.hook_psot'; closest valid names"),
     (["--method", "magic"], "unknown --method"), (["--direction", "sideways"], "direction must be one of")],
)
def test_bad_input(files, args, message):
    model_dir, task_file, out = files
    task = [] if "--task" in args else ["--task", task_file]
    result = runner.invoke(app, ["patch", model_dir, *task, *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())


def test_mismatched_lengths_are_refused(files, tmp_path):
    model_dir, _, out = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"clean": "the cat sat", "corrupt": "the big red dog sat", "answer": " on",
                               "wrong": " red"}) + "\n")
    result = runner.invoke(app, ["patch", model_dir, "--task", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "tokens" in result.stderr and "Traceback" not in result.output
