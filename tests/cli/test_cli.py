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
