"""The command line: models, inspect, predict, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tiny import tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cli") / "tiny-gpt2"
    tiny_hf_model("gpt2").save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return str(path)


def test_models_lists_bundled_models():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    assert "smollm2-135m" in result.stdout and "gemma3-270m" in result.stdout


def test_inspect_shows_architecture_and_hook_points(model_dir):
    result = runner.invoke(app, ["inspect", model_dir])
    assert result.exit_code == 0, result.output
    assert "gpt2" in result.stdout and "hook_pos_embed" in result.stdout
    assert "blocks.{0..1}.attn.hook_pattern" in result.stdout
    full = runner.invoke(app, ["inspect", model_dir, "--all"])
    assert "blocks.1.attn.hook_z" in full.stdout


def test_predict_shows_top_k(model_dir):
    result = runner.invoke(app, ["predict", model_dir, "the cat sat on the", "-k", "3"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "MODEL", ""], "prompt is empty"),
        (["predict", "no-such-model", "hi"], "unknown model 'no-such-model'; known names"),
        (["predict", "MODEL", " ".join(["cat"] * 70)], "at most 64"),
        (["predict", "MODEL", "hi", "-k", "0"], "at least 1"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(model_dir, args, message):
    result = runner.invoke(app, [model_dir if a == "MODEL" else a for a in args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_error_from_the_installed_command_has_no_traceback():
    exe = Path(sys.executable).parent / "mechscope"
    proc = subprocess.run([str(exe), "inspect", "no-such-model"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown model")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_the_command_line_starts_without_importing_torch():
    """``mechscope --help`` and argument errors must answer at once: importing the CLI
    (every command's module) loads no heavy library. Checked by what is imported, not by
    wall time."""
    heavy = ("torch", "transformers", "matplotlib", "numpy", "safetensors", "tqdm", "einops", "jaxtyping")
    code = ("import sys, mechscope, mechscope.cli.main; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_the_package_root_imports_its_names_on_first_use():
    import mechscope

    code = ("import sys, mechscope; assert 'torch' not in sys.modules; "
            "from mechscope import HookedModel, load_model; assert 'torch' in sys.modules; "
            "print(HookedModel.__module__, load_model.__module__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["mechscope.hooks.hooked_model", "mechscope.models.load"]
    assert set(mechscope.__all__) <= set(dir(mechscope))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        mechscope.nope  # noqa: B018


def test_an_out_directory_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    from mechscope.cli import common
    from mechscope.errors import InputError

    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        common.check_out_dir(tmp_path / "file")
    with pytest.raises(InputError, match="cannot be created: .* is a file"):
        common.check_out_dir(tmp_path / "file" / "deeper" / "out")
    common.check_out_dir(tmp_path / "new" / "out")  # created later, by the command
    monkeypatch.setattr(common.os, "access", lambda path, mode: False)  # as for a user without write permission
    with pytest.raises(InputError, match="is not writable"):
        common.check_out_dir(tmp_path / "new" / "out")


def test_output_names_differ_with_any_option_and_are_stable():
    from mechscope.cli.common import output_stem

    stem = output_stem("patch", "heads", "smollm2-135m", options={"what": "heads", "metric": "logit_diff"})
    assert stem == output_stem("patch", "heads", "smollm2-135m", options={"metric": "logit_diff", "what": "heads"})
    assert stem != output_stem("patch", "heads", "smollm2-135m", options={"what": "heads", "metric": "kl"})
    assert stem.startswith("patch-heads-smollm2-135m-") and len(stem.rsplit("-", 1)[1]) == 8


@pytest.mark.parametrize("spec, expected", [("3", [3]), ("0,4,-1", [0, 4, 9]), ("2:5", [2, 3, 4]), ("-3:", [7, 8, 9]),
                                            (":", list(range(10)))])
def test_index_options_read_lists_and_ranges(spec, expected):
    from mechscope.cli.common import parse_indices

    assert parse_indices(spec, 10, "--layers") == expected
