"""``mechscope sae harvest``: a store from the command line, resumable, with one-line errors."""

from __future__ import annotations

import random

import pytest
import typer
from tiny import WORDS, tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope.activations.store import ActivationStore
from mechscope.cli.sae_harvest import register

runner = CliRunner()
sae_app = typer.Typer(pretty_exceptions_enable=False)


@sae_app.callback()
def _group() -> None:
    """A group, as the lead's ``mechscope sae`` will be (one command alone would become the app)."""


register(sae_app)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sae-cli")
    models = {}
    for arch in ("gpt2", "llama-gqa"):
        models[arch] = root / arch
        tiny_hf_model(arch).save_pretrained(models[arch])
        tiny_tokenizer().save_pretrained(models[arch])
    corpus = root / "corpus"
    corpus.mkdir()
    rng = random.Random(0)
    for i in range(10):
        (corpus / f"doc{i}.txt").write_text(" ".join(rng.choice(WORDS) for _ in range(200)))
    return {"gpt2": str(models["gpt2"]), "llama": str(models["llama-gqa"]), "corpus": str(corpus), "root": root}


def _harvest(files, model, out, *extra):
    return runner.invoke(sae_app, ["harvest", files[model], "--hook", "blocks.0.hook_resid_post", "--tokens", "400",
                                   "--out", str(out), "--corpus", files["corpus"], "--seq-len", "16",
                                   "--shard-tokens", "150", *extra])


def test_harvest_writes_a_store_and_a_rerun_resumes(files, tmp_path):
    result = _harvest(files, "gpt2", tmp_path / "store", "--dtype", "bfloat16")
    assert result.exit_code == 0, result.output
    assert "stored 400 tokens of blocks.0.hook_resid_post (64) as bfloat16 in 3 shards" in " ".join(result.stdout.split())
    store = ActivationStore.open(tmp_path / "store")
    assert len(store) == 400 and store.complete and store.manifest["settings"]["seq_len"] == 16
    again = _harvest(files, "gpt2", tmp_path / "store", "--dtype", "bfloat16")
    assert again.exit_code == 0, again.output


def test_two_hooks_make_a_transcoder_store(files, tmp_path):
    result = runner.invoke(sae_app, ["harvest", files["llama"], "--hook", "blocks.1.ln2.hook_normalized",
                                     "--hook", "blocks.1.hook_mlp_out", "--tokens", "200", "--out", str(tmp_path),
                                     "--corpus", files["corpus"], "--seq-len", "16"])
    assert result.exit_code == 0, result.output
    assert ActivationStore.open(tmp_path).hook_names == ["blocks.1.ln2.hook_normalized", "blocks.1.hook_mlp_out"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--hook", "blocks.0.hook_resid_pots"], "unknown hook point 'blocks.0.hook_resid_pots'; closest valid names"),
        (["--tokens", "0"], "--tokens must be at least 1; received 0"),
        (["--dtype", "float16"], "--dtype must be one of float32, bfloat16; received 'float16'"),
        (["--corpus", "no/such/dir"], "no such file or directory: no/such/dir"),
        (["--tokens", "100000"], "fewer than n_tokens=100,000"),
        (["--hook", "blocks.0.hook_mlp_out", "--hook", "blocks.1.hook_mlp_out"], "one point (an autoencoder) or two"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(files, tmp_path, extra, message):
    result = _harvest(files, "gpt2", tmp_path / "store", *extra)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_a_store_of_another_model_or_settings_is_refused(files, tmp_path):
    assert _harvest(files, "gpt2", tmp_path).exit_code == 0
    other = _harvest(files, "llama", tmp_path)
    assert other.exit_code == 2 and "holds activations of another model" in " ".join(other.stderr.split())
    settings = _harvest(files, "gpt2", tmp_path, "--seq-len", "32")
    assert settings.exit_code == 2 and "seq_len: stored 16, asked 32" in " ".join(settings.stderr.split())
