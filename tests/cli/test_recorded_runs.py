"""Every technique command records its run, with its stages, in the results store."""

from __future__ import annotations

import json
import random

import pytest
import torch
from tiny import WORDS, tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope.cli.main import app
from mechscope.store import open_store

runner = CliRunner()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny GPT-2, a task file, an SAE of its layer 0, and a text file."""
    from mechscope.sae import SAEConfig, SparseAutoencoder
    from mechscope.sae.saelens import save_sae

    root = tmp_path_factory.mktemp("recorded")
    model = root / "tiny-gpt2"
    tiny_hf_model("gpt2").save_pretrained(model)
    tiny_tokenizer().save_pretrained(model)
    pairs = root / "pairs.jsonl"
    pairs.write_text(json.dumps({"clean": "when mary and john went to the store , john gave a drink to",
                                 "corrupt": "when tom and alice went to the store , alice gave a drink to",
                                 "answer": " mary", "wrong": " john"}) + "\n")
    torch.manual_seed(0)
    save_sae(SparseAutoencoder(SAEConfig(d_in=64, d_sae=32, architecture="topk", k=4, model_name=str(model),
                                         hook_name="blocks.0.hook_resid_post")), root / "sae")
    text = root / "words.txt"
    rng = random.Random(0)
    text.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(200)) for _ in range(40)))
    labelled = root / "labelled.jsonl"
    labelled.write_text("\n".join(json.dumps({"text": f"the {word} sat on the mat", "label": label})
                                  for label, words in (("a", ("cat", "dog", "mary")), ("b", ("paris", "rome", "red")))
                                  for word in words for _ in range(2)) + "\n")
    contrast = root / "contrast.jsonl"
    contrast.write_text("\n".join(json.dumps({"positive": f"the {a} sat", "negative": f"the {b} sat"})
                                   for a, b in (("cat", "paris"), ("dog", "rome"))) + "\n")
    return {"MODEL": str(model), "PAIRS": str(pairs), "SAE": str(root / "sae"), "TEXT": str(text),
            "LABELLED": str(labelled), "CONTRAST": str(contrast)}


COMMANDS = {
    "patch": (["patch", "MODEL", "--task", "PAIRS", "--what", "resid"], {"patching", "patching: layer 0"}),
    "circuit": (["circuit", "MODEL", "--task", "PAIRS", "--method", "eap", "--no-progress"],
                {"circuit", "faithfulness", "signed faithfulness", "edge scores: prompts 0-0"}),
    "lens": (["lens", "MODEL", "the cat sat on the"], {"logit lens"}),
    "heads": (["heads", "MODEL", "--seq-len", "8", "--n-seqs", "2"], {"head roles"}),
    "tasks": (["tasks", "MODEL", "--task", "PAIRS"], {"PAIRS"}),
    "sae eval": (["sae", "eval", "MODEL", "SAE", "--tokens", "64", "--seq-len", "16", "--text", "TEXT"],
                 {"sae evaluation"}),
    "trace": (["trace", "MODEL", "--prompt", "the cat sat on the mat", "--subject", "cat", "--kinds", "hidden",
               "--samples", "2"], {"causal trace"}),
    "edit": (["edit", "MODEL", "--prompt", "the {} sat on the", "--subject", "cat", "--target", "mat", "--method",
              "ft-l", "--layer", "0", "--generate", "2"], {"edit", "outcome"}),
    "probe": (["probe", "MODEL", "--data", "LABELLED", "--layers", "1", "--no-progress"], {"probe sweep"}),
    "steer": (["steer", "MODEL", "--pairs", "CONTRAST", "--layer", "1", "--prompt", "the cat", "--max-new-tokens", "2"],
              {"vector", "steered text"}),
    "steer sweep": (["steer", "sweep", "MODEL", "--pairs", "CONTRAST", "--targets", "cat", "--layers", "1", "--alphas",
                     "1", "--n-random", "1", "--no-progress"], {"vector", "steering sweep"}),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_run_is_recorded_with_its_stages_and_served_again(inputs, tmp_path, command):
    args, stages = COMMANDS[command]
    args = [inputs.get(a, a) for a in args] + ["--out", str(tmp_path / "out"), "--store", str(tmp_path / "db")]
    stages = {inputs.get(s, s) for s in stages}
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "recorded as run" in first.stdout
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "served from the store" in again.stdout
    with open_store(tmp_path / "db") as store:
        runs = sorted(store.runs(command=command), key=lambda run: run.started)
        assert [run.status for run in runs] == ["complete", "complete"]
        recorded = {s.name: s.cached for s in store.stages(runs[0].id)}
        assert stages <= set(recorded) and not any(recorded.values())
        assert any(store.stages(runs[1].id)[i].cached for i in range(len(store.stages(runs[1].id))))
        assert store.artifacts(runs[0].id)  # the files it wrote, kept with the run
    fresh = runner.invoke(app, [*args, "--no-cache"])
    assert fresh.exit_code == 0 and "served from the store" not in fresh.stdout
    none = runner.invoke(app, [*args[:-2], "--no-store"])
    assert none.exit_code == 0 and "recorded as run" not in none.stdout
