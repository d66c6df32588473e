"""mechscope trace and mechscope edit: outputs, and one-line errors before any model loads."""

from __future__ import annotations

import json

import pytest
from tiny import tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope.cli.main import app
from mechscope.editing import load_edit

runner = CliRunner()


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
    data = json.loads((out / "trace-tiny-llama.json").read_text())
    assert data["type"] == "CausalTrace" and data["subject_range"] == [1, 2]
    assert (out / "trace-tiny-llama.png").is_file()


def test_trace_facts_with_geva(files):
    model_dir, facts_file, out = files
    result = runner.invoke(app, ["trace", model_dir, "--facts", facts_file, "--all", "--samples", "2",
                                 "--kinds", "mlp,attn", "--geva", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "trace-average-tiny-llama.json").read_text())
    assert data["n_facts"] == 2 and data["kinds"] == ["mlp", "attn"]
    for stem in ("knockout", "extraction"):
        assert (out / f"{stem}-tiny-llama.png").is_file()


def test_edit_writes_the_edit_and_its_outcome(files):
    model_dir, _, out = files
    result = runner.invoke(app, ["edit", model_dir, "--prompt", "located in city of {}", "--subject", "eiffel tower",
                                 "--target", "rome", "--method", "ft-l", "--layer", "0", "--generate", "3",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "edit-tiny-llama.json").read_text())
    assert data["type"] == "EditOutcome" and data["layers"] == [0]
    assert load_edit(out / "edit-tiny-llama.safetensors").method == "ft-l"


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


def test_output_location_is_checked_before_loading(files, tmp_path):
    _, facts_file, _ = files
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(app, ["trace", "no-such-model-dir/", "--facts", facts_file, "--out", str(blocker)])
    assert result.exit_code == 2 and "is a file" in result.stderr
