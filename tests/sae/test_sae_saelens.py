"""The SAELens layout: directories written by hand from the published format load here,
and what mechscope saves reads back to the same function (scales folded in)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from mechscope.errors import InputError
from mechscope.sae import SAEConfig, SparseAutoencoder, load_sae, save_sae

D_IN, D_SAE, D_OUT = 8, 16, 6
GEN = torch.Generator().manual_seed(0)


def _r(*shape):
    return torch.randn(*shape, generator=GEN)


def _write(path, cfg: dict, tensors: dict):
    """A directory as SAELens 6 writes it: cfg.json and sae_weights.safetensors, nothing else."""
    path.mkdir()
    (path / "cfg.json").write_text(json.dumps(cfg))
    save_file({k: v.contiguous() for k, v in tensors.items()}, path / "sae_weights.safetensors")
    return path


BASE = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
        "normalize_activations": "none", "metadata": {"sae_lens_version": "6.54.12", "hook_name": "blocks.0.hook_resid_post",
                                                      "model_name": "gpt2"}}


def _sae_tensors():
    return {"W_enc": _r(D_IN, D_SAE), "b_enc": _r(D_SAE), "W_dec": _r(D_SAE, D_IN), "b_dec": _r(D_IN)}


def test_a_hand_written_standard_sae_computes_the_published_formula(tmp_path):
    t = _sae_tensors()
    sae = load_sae(_write(tmp_path / "std", {**BASE, "architecture": "standard"}, t))
    assert sae.cfg.architecture == "relu" and (sae.cfg.d_in, sae.cfg.d_sae) == (D_IN, D_SAE)
    assert sae.cfg.hook_name == "blocks.0.hook_resid_post" and sae.cfg.model_name == "gpt2"
    x = _r(5, D_IN)
    latents = torch.relu((x - t["b_dec"]) @ t["W_enc"] + t["b_enc"])  # SAELens: encode(x - b_dec)
    with torch.no_grad():
        out = sae(x)
    torch.testing.assert_close(out.latents, latents, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.output, latents @ t["W_dec"] + t["b_dec"], rtol=1e-5, atol=1e-4)


def test_hand_written_topk_and_jumprelu(tmp_path):
    t = _sae_tensors()
    topk = load_sae(_write(tmp_path / "topk", {**BASE, "architecture": "topk", "k": 3}, t))
    x = _r(5, D_IN)
    with torch.no_grad():
        latents = topk(x).latents
    assert topk.cfg.k == 3 and ((latents > 0).sum(-1) <= 3).all()
    pre = (x - t["b_dec"]) @ t["W_enc"] + t["b_enc"]
    kept = pre.topk(3, dim=-1)
    expected = torch.zeros_like(pre).scatter(-1, kept.indices, torch.relu(kept.values))
    torch.testing.assert_close(latents, expected, rtol=1e-5, atol=1e-5)

    threshold = _r(D_SAE).abs()
    jump = load_sae(_write(tmp_path / "jump", {**BASE, "architecture": "jumprelu"}, {**t, "threshold": threshold}))
    with torch.no_grad():
        latents = jump(x).latents
    torch.testing.assert_close(latents, torch.relu(pre) * (pre > threshold), rtol=1e-5, atol=1e-5)


def test_hand_written_skip_transcoder(tmp_path):
    t = {"W_enc": _r(D_IN, D_SAE), "b_enc": _r(D_SAE), "W_dec": _r(D_SAE, D_OUT), "b_dec": _r(D_OUT),
         "W_skip": _r(D_OUT, D_IN)}  # SAELens stores the skip as [d_out, d_in], used as x @ W_skip.T
    cfg = {**BASE, "architecture": "skip_transcoder", "d_out": D_OUT, "apply_b_dec_to_input": False}
    sae = load_sae(_write(tmp_path / "tc", cfg, t))
    assert sae.cfg.is_transcoder and sae.cfg.skip and sae.cfg.d_out == D_OUT
    x = _r(5, D_IN)
    latents = torch.relu(x @ t["W_enc"] + t["b_enc"])  # a transcoder does not subtract b_dec
    with torch.no_grad():
        out = sae(x)
    torch.testing.assert_close(out.output, latents @ t["W_dec"] + t["b_dec"] + x @ t["W_skip"].T, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "architecture, transcoder",
    [(a, False) for a in ("relu", "topk", "batchtopk", "jumprelu")]
    + [(a, True) for a in ("relu", "topk", "jumprelu")],  # SAELens has no BatchTopK transcoder
)
def test_save_then_load_gives_the_same_function_with_scales_folded(tmp_path, architecture, transcoder):
    torch.manual_seed(0)
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture=architecture, k=4 if "topk" in architecture else None,
                    d_out=D_OUT if transcoder else None, skip=transcoder, hook_name="blocks.0.hook_mlp_in")
    sae = SparseAutoencoder(cfg)
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        sae.input_scale.fill_(0.5)
        sae.output_scale.fill_(2.0 if transcoder else 0.5)
        if architecture == "batchtopk":
            sae.threshold.fill_(0.05)
    x = _r(7, D_IN) * 3
    with torch.no_grad():
        sae.eval()
        before = sae(x)
    save_sae(sae, tmp_path / "saved")
    files = sorted(p.name for p in (tmp_path / "saved").iterdir())
    assert files == ["cfg.json", "sae_weights.safetensors"]
    raw = json.loads((tmp_path / "saved" / "cfg.json").read_text())
    assert raw["normalize_activations"] == "none" and raw["d_in"] == D_IN and raw["d_sae"] == D_SAE
    if architecture == "batchtopk":  # inference form, as SAELens saves it
        assert raw["architecture"] == "jumprelu" and "threshold" in load_file(tmp_path / "saved" / "sae_weights.safetensors")
    loaded = load_sae(tmp_path / "saved")
    assert float(loaded.input_scale) == 1.0 and float(loaded.output_scale) == 1.0
    with torch.no_grad():
        after = loaded(x)
    torch.testing.assert_close(after.output, before.output, rtol=1e-4, atol=1e-4)
    assert torch.equal(after.latents != 0, before.latents != 0)
    assert float(sae.input_scale) == 0.5  # saving left the original alone


@pytest.mark.parametrize(
    "cfg, tensors, message",
    [
        ({**BASE, "architecture": "gated"}, {}, "architecture"),
        ({**BASE, "architecture": "standard"}, {"W_enc": _r(D_SAE, D_IN)}, "W_enc"),
        ({**BASE, "architecture": "topk", "k": D_SAE + 1}, {}, "k"),
    ],
)
def test_a_directory_that_does_not_fit_is_refused_in_one_line(tmp_path, cfg, tensors, message):
    path = _write(tmp_path / "bad", cfg, {**_sae_tensors(), **tensors})
    with pytest.raises(InputError, match=message) as error:
        load_sae(path)
    assert "\n" not in str(error.value)


def test_an_unfolded_normalisation_loads_with_a_warning_as_in_saelens(tmp_path):
    cfg = {**BASE, "architecture": "standard", "normalize_activations": "expected_average_only_in"}
    with pytest.warns(UserWarning, match="normalize_activations='expected_average_only_in'"):
        load_sae(_write(tmp_path / "norm", cfg, _sae_tensors()))


def test_saving_over_a_directory_of_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    sae = SparseAutoencoder(SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture="topk", k=2))
    with pytest.raises(InputError):
        save_sae(sae, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
