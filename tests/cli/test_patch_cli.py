"""mechscope patch: a sweep from the command line, written as JSON and PNG; options checked
before the model loads; costly sweeps announced; interrupted sweeps resumed."""

from __future__ import annotations

import json
from pathlib import Path

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
    written = sorted(p.name for p in out.iterdir() if p.name.startswith(f"patch-{what}-"))
    assert [p.split(".")[-1] for p in written] == ["json", "png"]
    data = json.loads((out / written[0]).read_text())
    assert data["type"] == "PatchingResult" and data["method"] == "exact"
    assert data["options"]["what"] == what and data["options"]["metric"] == "logit_diff"


def written(result) -> list[Path]:
    """The files a command said it wrote."""
    return [Path(line.split("wrote ", 1)[1].split(" (")[0]) for line in result.stdout.splitlines()
            if line.startswith("wrote ")]


def test_runs_with_different_options_never_overwrite_each_other(files, tmp_path):
    model_dir, task_file, _ = files
    runs = [["--method", "exact"], ["--method", "atp"], ["--method", "atp", "--direction", "noise"],
            ["--method", "atp", "--metric", "prob_diff"]]
    jsons = []
    for args in runs:
        result = runner.invoke(app, ["patch", model_dir, "--task", task_file, "--what", "resid", *args,
                                     "--out", str(tmp_path), "--no-store"])
        assert result.exit_code == 0, result.output
        jsons += [path for path in written(result) if path.suffix == ".json"]
    assert len(set(jsons)) == len(runs) and len(list(tmp_path.glob("*.json"))) == len(runs)
    options = [json.loads(path.read_text())["options"] for path in jsons]
    assert [(o["method"], o["direction"], o["metric"]) for o in options] == [
        ("exact", "denoise", "logit_diff"), ("atp", "denoise", "logit_diff"), ("atp", "noise", "logit_diff"),
        ("atp", "denoise", "prob_diff")]


def test_built_in_tasks_and_files_follow_one_metric_rule(files, tmp_path):
    """No --metric: the task's own (logit_diff for built-in tasks and for files without one)."""
    model_dir, task_file, _ = files
    result = runner.invoke(app, ["patch", model_dir, "--task", task_file, "--what", "resid", "--method", "atp",
                                 "--out", str(tmp_path), "--no-store"])
    assert result.exit_code == 0, result.output
    assert "metric logit_diff" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    "args, message",
    [(["--task", "nope"], "unknown task 'nope'"),
     (["--what", "everything"], "unknown sweep 'everything'; expected one of resid, attn, mlp, heads, heads_by_pos"),
     (["--what", "mlp.hook_psot"], "unknown hook point 'blocks.0.mlp.hook_psot'; closest valid names"),
     (["--method", "magic"], "unknown --method"), (["--direction", "sideways"], "direction must be one of"),
     (["--positions", "40:50"], "--positions 40:50 selects nothing"), (["--layers", "x"], "--layers takes indices")],
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


@pytest.mark.parametrize(
    "args, message",
    [(["--method", "magic"], "unknown --method 'magic'"), (["--direction", "up"], "direction must be one of"),
     (["--what", "all"], "unknown sweep 'all'"), (["-n", "0"], "-n must be at least 1"),
     (["--metric", "nope"], "unknown metric 'nope'"), (["--task", "nope"], "unknown task 'nope'"),
     (["--task", "missing.jsonl"], "task file missing.jsonl does not exist"),
     (["--task", "FILE", "-n", "4"], "-n applies to built-in tasks"), (["--out", "OUTFILE"], "is a file"),
     (["--out", "OUTFILE/sub"], "cannot be created"), (["--resume", "--no-store"], "--resume continues from"),
     (["--resume", "--no-cache"], "--resume takes the parts")],
)
def test_every_option_and_output_is_checked_before_the_model_loads(files, tmp_path, args, message):
    _, task_file, _ = files
    (tmp_path / "file").write_text("not a directory")
    places = {"FILE": task_file, "OUTFILE": str(tmp_path / "file"), "OUTFILE/sub": str(tmp_path / "file" / "sub")}
    result = runner.invoke(app, ["patch", "no-such-model", *[places.get(a, a) for a in args]])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split()) and "unknown model" not in result.stderr


def test_a_costly_sweep_is_announced_and_waits_for_yes(files, tmp_path, monkeypatch):
    import mechscope.patching.cost as cost

    model_dir, task_file, _ = files
    monkeypatch.setattr(cost, "CONFIRM_TOKENS", 100)
    args = ["patch", model_dir, "--task", task_file, "--what", "resid", "--out", str(tmp_path), "--no-store"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2
    said = " ".join(refused.stderr.split())
    assert "estimate: exact resid patching:" in said and "forward passes" in said and "peak memory" in said
    assert "rerun with --yes" in said and "AtP" in said and "--positions" in said
    assert not list(tmp_path.iterdir())
    assert runner.invoke(app, [*args, "--yes"]).exit_code == 0


def test_an_interrupted_sweep_resumes_from_the_store_to_the_same_numbers(files, tmp_path, monkeypatch):
    import mechscope.patching.activation as activation
    from mechscope.store import open_store

    model_dir, task_file, _ = files
    store = tmp_path / "results.db"
    args = ["patch", model_dir, "--task", task_file, "--what", "heads_by_pos", "--store", str(store)]
    whole = runner.invoke(app, [*args, "--out", str(tmp_path / "whole"), "--no-store"])
    assert whole.exit_code == 0, whole.output
    nothing = runner.invoke(app, [*args, "--out", str(tmp_path / "nothing"), "--resume"])
    assert nothing.exit_code == 2 and "holds no finished part" in nothing.stderr

    real, calls = activation.run_from, []

    def interrupted_in_layer_1(model, inputs, cache, *, layer, **kwargs):
        calls.append(layer)
        if layer == 1:
            raise KeyboardInterrupt
        return real(model, inputs, cache, layer=layer, **kwargs)

    monkeypatch.setattr(activation, "run_from", interrupted_in_layer_1)
    stopped = runner.invoke(app, [*args, "--out", str(tmp_path / "resumed")])
    assert stopped.exit_code == 130 and "rerun the same command with --resume" in " ".join(stopped.stderr.split())
    assert not (tmp_path / "resumed").exists()  # nothing half-written
    monkeypatch.setattr(activation, "run_from", real)
    resumed = runner.invoke(app, [*args, "--out", str(tmp_path / "resumed"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    values = [json.loads(next((tmp_path / d).glob("*.json")).read_text())["values"] for d in ("whole", "resumed")]
    assert values[0] == values[1]
    with open_store(store) as opened:
        runs = sorted(opened.runs(command="patch"), key=lambda run: run.started)
        assert [run.status for run in runs] == ["failed", "interrupted", "complete"]  # the refused --resume first
        stages = {s.name: s.cached for s in opened.stages(runs[-1].id)}
    assert stages == {"patching: layer 0": True, "patching: layer 1": False, "patching": False}
