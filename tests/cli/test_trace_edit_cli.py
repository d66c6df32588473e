"""mechscope trace and mechscope edit: outputs, and one-line errors before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope.cli.main import app
from mechscope.editing import load_edit

runner = CliRunner()


def written(result) -> list[Path]:
    """The files a command said it wrote."""
    return [Path(line.split("wrote ", 1)[1].split(" (")[0]) for line in result.stdout.splitlines()
            if line.startswith("wrote ")]


def one(out: Path, pattern: str) -> Path:
    """The one file in ``out`` matching ``pattern``."""
    found = list(out.glob(pattern))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("factual")
    model_dir = root / "tiny-llama"
    tiny_hf_model("llama-gqa").save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    facts = [{"known_id": 0, "prompt": "the eiffel tower is located in city of", "subject": "eiffel tower",
              "attribute": "paris"},
             {"known_id": 1, "prompt": "mary went to the store", "subject": "mary", "attribute": "rome"}]
    facts_file = root / "facts.json"
    facts_file.write_text(json.dumps(facts))
    return str(model_dir), str(facts_file), root / "out"


def test_trace_one_prompt(files):
    model_dir, _, out = files
    result = runner.invoke(app, ["trace", model_dir, "--prompt", "the eiffel tower is located in city of",
                                 "--subject", "eiffel tower", "--samples", "2", "--window", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(one(out, "trace-tiny-llama-*.json").read_text())
    assert data["type"] == "CausalTrace" and data["subject_range"] == [1, 2]
    assert data["options"]["subject"] == "eiffel tower" and data["options"]["samples"] == 2
    assert one(out, "trace-tiny-llama-*.png").is_file()


def test_trace_facts_with_geva(files):
    model_dir, facts_file, out = files
    result = runner.invoke(app, ["trace", model_dir, "--facts", facts_file, "--all", "--samples", "2",
                                 "--kinds", "mlp,attn", "--geva", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(one(out, "trace-average-tiny-llama-*.json").read_text())
    assert data["n_facts"] == 2 and data["kinds"] == ["mlp", "attn"]
    assert data["options"]["facts"] == facts_file and data["options"]["all"] is True
    for stem in ("knockout", "extraction"):
        assert one(out, f"{stem}-tiny-llama-*.png").is_file()


def test_traces_differing_in_one_option_never_overwrite_each_other(files, tmp_path):
    model_dir, _, _ = files
    base = ["--prompt", "the eiffel tower is located in city of", "--subject", "eiffel tower", "--kinds", "hidden",
            "--samples", "2"]
    runs = [base, [*base, "--noise", "2"], [*base[:1], "mary went to the store", "--subject", "mary", *base[4:]]]
    jsons = []
    for args in runs:
        result = runner.invoke(app, ["trace", model_dir, *args, "--out", str(tmp_path), "--no-store"])
        assert result.exit_code == 0, result.output
        jsons += [path for path in written(result) if path.suffix == ".json"]
    assert len(set(jsons)) == len(runs) == len(list(tmp_path.glob("trace-*.json")))
    assert [json.loads(path.read_text())["options"]["noise"] for path in jsons] == [3.0, 2.0, 3.0]


def test_edit_writes_the_edit_and_its_outcome(files):
    model_dir, _, out = files
    result = runner.invoke(app, ["edit", model_dir, "--prompt", "located in city of {}", "--subject", "eiffel tower",
                                 "--target", "rome", "--method", "ft-l", "--layer", "0", "--generate", "3",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(one(out, "edit-ft-l-tiny-llama-*.json").read_text())
    assert data["type"] == "EditOutcome" and data["layers"] == [0]
    assert data["options"]["target"] == "rome" and data["options"]["layer"] == 0
    assert load_edit(one(out, "edit-ft-l-tiny-llama-*.safetensors")).method == "ft-l"


def test_edits_differing_in_one_option_never_overwrite_each_other(files, tmp_path):
    model_dir, _, _ = files
    base = ["edit", model_dir, "--prompt", "located in city of {}", "--subject", "eiffel tower", "--method", "ft-l",
            "--layer", "0", "--generate", "0", "--out", str(tmp_path), "--no-store"]
    runs = [["--target", "rome"], ["--target", "paris"], ["--target", "rome", "--layer", "1"]]
    for args in runs:
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("edit-*.json"))) == len(list(tmp_path.glob("edit-*.safetensors"))) == len(runs)
    targets = sorted(load_edit(path).requests[0].requested_rewrite.target_new for path in tmp_path.glob("*.safetensors"))
    assert targets == ["paris", "rome", "rome"]


@pytest.mark.parametrize(
    "args, message",
    [(["trace", "--prompt", "the cat sat", "--subject", "dog"], "does not occur in the prompt"),
     (["trace", "--prompt", "the cat sat"], "--prompt and --subject go together"),
     (["trace", "--kinds", "mlp,heads"], "kinds must be some of"),
     (["trace", "--facts", "missing.json"], "no such facts file"),
     (["trace", "--prompt", "the cat sat on", "--subject", "cat", "--answer", " sat on"], "not one"),
     (["edit", "--prompt", "the {} sat", "--subject", "cat", "--target", "dog", "--method", "rom"], "did you mean 'rome'"),
     (["edit", "--prompt", "the dog sat", "--subject", "cat", "--target", "dog"], "does not occur in the prompt"),
     (["edit", "--prompt", "the {} sat", "--subject", "cat", "--target", "mat", "--layer", "9"], "layer must be in 0..1"),
     (["edit", "--prompt", "the {} sat", "--subject", "cat", "--target", "mat", "--save", "x.bin"], "--save must")],
)
def test_bad_input_is_one_line(files, args, message):
    model_dir, _, out = files
    result = runner.invoke(app, [args[0], model_dir, *args[1:], "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["trace", "--facts", "FACTS", "--out", "FILE"], "is a file"),
    (["trace", "--prompt", "the cat sat", "--subject", "cat", "--out", "FILE/sub"], "cannot be created"),
    (["trace", "--facts", "FACTS", "--answer", " paris"], "--answer measures one token of --prompt"),
    (["trace", "--prompt", "the cat sat", "--subject", "cat", "--geva"], "--geva applies to facts"),
    (["trace", "--facts", "FACTS", "--store", "DIR"], "is a directory"),
    (["edit", "--prompt", "the {} sat", "--subject", "cat", "--target", "dog", "--out", "FILE"], "is a file"),
    (["edit", "--prompt", "the {} sat", "--subject", "cat", "--target", "dog", "--save", "FILE/e.safetensors"],
     "--save's directory"),
    (["edit", "--prompt", "the {} sat", "--subject", "cat", "--target", "dog", "--generate", "-1"],
     "--generate must be at least 0"),
])
def test_options_and_output_locations_are_checked_before_loading(files, tmp_path, args, message):
    _, facts_file, _ = files
    (tmp_path / "file").write_text("")
    places = {"FACTS": facts_file, "FILE": str(tmp_path / "file"), "DIR": str(tmp_path),
              "FILE/sub": str(tmp_path / "file" / "sub"), "FILE/e.safetensors": str(tmp_path / "file" / "e.safetensors")}
    result = runner.invoke(app, [args[0], "no-such-model-dir/", *[places.get(a, a) for a in args[1:]]])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split()) and "unknown model" not in result.stderr
