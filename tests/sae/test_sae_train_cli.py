"""``mechscope sae train``: harvest → train → a loadable SAE, resumable, with one-line errors."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch
from tiny import WORDS, tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope.cli.main import app
from mechscope.sae.saelens import load_sae
from mechscope.sae.train_config import TrainConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A tiny GPT-2, a corpus, and two stores of it: one point, and a transcoder's two."""
    root = tmp_path_factory.mktemp("sae-train-cli")
    model = root / "tiny-gpt2"
    tiny_hf_model("gpt2").save_pretrained(model)
    tiny_tokenizer().save_pretrained(model)
    corpus = root / "corpus.txt"
    rng = random.Random(0)
    corpus.write_text("\n\n".join(" ".join(rng.choice(WORDS) for _ in range(200)) for _ in range(12)))
    common = ["--tokens", "1024", "--corpus", str(corpus), "--seq-len", "32", "--shard-tokens", "300"]
    for name, hooks in (("resid", ["blocks.1.hook_resid_post"]),
                        ("pairs", ["blocks.1.ln2.hook_normalized", "blocks.1.hook_mlp_out"])):
        flags = [f for hook in hooks for f in ("--hook", hook)]
        result = runner.invoke(app, ["sae", "harvest", str(model), *flags, "--out", str(root / name), *common])
        assert result.exit_code == 0, result.output
    return root


def _train(stores, out, *extra):
    return runner.invoke(app, ["sae", "train", str(stores / "resid"), "--out", str(out), "--width", "128", "--k", "4",
                               "--batch-size", "256", "--tokens", "2560", "--checkpoint-every", "4",
                               "--report", str(out.parent / "report"), *extra])


def test_train_saves_a_loadable_sae_with_the_store_s_hook_and_model(stores, tmp_path):
    result = _train(stores, tmp_path / "sae")
    assert result.exit_code == 0, result.output
    sae = load_sae(tmp_path / "sae")
    assert (sae.cfg.architecture, sae.cfg.d_in, sae.cfg.d_sae, sae.cfg.k) == ("topk", 64, 128, 4)
    assert sae.cfg.hook_name == "blocks.1.hook_resid_post" and sae.cfg.model_name.endswith("tiny-gpt2")
    report = json.loads(next((tmp_path / "report").glob("sae-train-*.json")).read_text())
    assert report["steps"] == 10 and len(report["history"]["mse"]) == 10
    # options not given take the configs' defaults, not numbers of the command's own
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for name in ("lr", "lr_decay_fraction", "dead_tokens_threshold", "b_dec_init", "seed"):
        assert f"{name}={defaults[name]}," in report["options"]["sae"]
    assert report["history"]["mse"][-1] < report["history"]["mse"][0]  # it learned something
    assert sorted(p.name for p in (tmp_path / "sae.ckpt").iterdir()) == ["step-000000008", "step-000000010"]

    # rerunning the finished command resumes from its last checkpoint: the same weights
    again = _train(stores, tmp_path / "sae")
    assert again.exit_code == 0, again.output
    assert torch.equal(load_sae(tmp_path / "sae").W_enc, sae.W_enc)


def test_a_second_point_makes_a_transcoder(stores, tmp_path):
    result = runner.invoke(app, ["sae", "train", str(stores / "pairs"), "--target", "blocks.1.hook_mlp_out", "--skip",
                                 "--out", str(tmp_path / "tc"), "--width", "96", "--k", "4", "--batch-size", "256",
                                 "--tokens", "1024", "--report", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    sae = load_sae(tmp_path / "tc")
    assert sae.cfg.is_transcoder and sae.cfg.skip and sae.W_skip is not None
    assert (sae.cfg.hook_name, sae.cfg.hook_name_out) == ("blocks.1.ln2.hook_normalized", "blocks.1.hook_mlp_out")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--k", "500"], "SAEConfig.k must be an integer in 1..d_sae (128) for topk; received 500"),
        (["--architecture", "gated"], "--architecture must be one of relu, topk, batchtopk, jumprelu"),
        (["--architecture", "relu"], "--k applies to topk and batchtopk"),
        (["--target", "blocks.1.hook_resid_post"], "is the input point too"),
        (["--target", "blocks.1.hook_mlp_out"], "stores blocks.1.hook_resid_post; received target='blocks.1.hook_mlp_out'"),
        (["--batch-size", "4096"], "fewer than one batch of 4,096"),
        (["--lr", "-1"], "TrainConfig.lr must be a positive number"),
    ],
)
def test_bad_input_gives_one_line_and_a_nonzero_exit(stores, tmp_path, extra, message):
    # later options override the defaults _train passes
    result = _train(stores, tmp_path / "sae", *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "sae").exists()  # nothing half-written


def test_a_directory_that_is_no_store_is_one_line(tmp_path):
    result = runner.invoke(app, ["sae", "train", str(tmp_path), "--out", str(tmp_path / "sae")])
    assert result.exit_code == 2 and "holds no manifest.json" in result.stderr
