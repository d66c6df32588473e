"""The four architectures' forward passes, scale folding and decoder normalisation."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import InputError
from mechscope.sae import SAEConfig, SparseAutoencoder
from mechscope.sae.model import JumpReLU, Step, batch_topk_relu

D_IN, D_SAE = 16, 64


def _sae(architecture="topk", **kw):
    torch.manual_seed(0)
    k = 4 if architecture in ("topk", "batchtopk") else None
    return SparseAutoencoder(SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture=architecture, k=k, **kw))


def test_topk_keeps_at_most_k_per_token():
    sae = _sae("topk")
    latents = sae.encode(torch.randn(10, D_IN))
    assert (latents > 0).sum(-1).max() <= 4 and (latents < 0).sum() == 0


def test_batchtopk_keeps_k_per_token_on_average_then_thresholds():
    sae = _sae("batchtopk")
    x = torch.randn(10, D_IN)
    sae.train()
    assert int((sae.encode(x) > 0).sum()) <= 40
    sae.eval()
    sae.threshold.fill_(0.5)
    pre = sae.encode_pre(x)
    torch.testing.assert_close(sae.encode(x), torch.relu(pre) * (pre > 0.5))


def test_jumprelu_gradients_are_the_rectangle_estimates():
    pre = torch.tensor([[0.10, 0.2004, 0.5]], requires_grad=True)
    theta = torch.tensor([0.2, 0.2, 0.2], requires_grad=True)
    out = JumpReLU.apply(pre, theta, 0.001)
    assert out.tolist() == [[0.0, pytest.approx(0.2004), 0.5]]
    out.sum().backward()
    assert pre.grad.tolist() == [[0.0, 1.0, 1.0]]
    assert theta.grad.tolist() == pytest.approx([0.0, -0.2 / 0.001, 0.0])
    theta.grad = None
    Step.apply(pre, theta, 0.001).sum().backward()
    assert theta.grad.tolist() == pytest.approx([0.0, -1 / 0.001, 0.0])


@pytest.mark.parametrize("architecture", ["relu", "topk", "batchtopk", "jumprelu"])
@pytest.mark.parametrize("transcoder", [False, True])
def test_folding_scales_keeps_latents_and_outputs(architecture, transcoder):
    kw = {"d_out": 12, "skip": True} if transcoder else {}
    sae = _sae(architecture, **kw).eval()
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(0.1 * torch.randn_like(p))
        sae.input_scale.fill_(3.0)
        sae.output_scale.fill_(3.0 if not transcoder else 0.5)
        sae.threshold.fill_(0.05)
    x = torch.randn(7, D_IN)
    before = sae(x)
    sae.fold_scales()
    after = sae(x)
    assert float(sae.input_scale) == 1.0 == float(sae.output_scale)
    torch.testing.assert_close(after.latents, before.latents, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(after.output, before.output, atol=1e-5, rtol=1e-5)


def test_normalizing_the_decoder_keeps_outputs():
    sae = _sae("relu")
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(D_SAE, 1) + 0.5)
    x = torch.randn(5, D_IN)
    before = sae(x).output
    sae.normalize_decoder()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    torch.testing.assert_close(sae(x).output, before, atol=1e-5, rtol=1e-5)


def test_config_errors():
    with pytest.raises(InputError, match="k must be an integer in 1..d_sae"):
        SAEConfig(d_in=4, d_sae=8, architecture="topk", k=9)
    with pytest.raises(InputError, match="architecture must be one of"):
        SAEConfig(d_in=4, d_sae=8, architecture="gated")
    with pytest.raises(InputError, match="skip is for transcoders"):
        SAEConfig(d_in=4, d_sae=8, architecture="relu", skip=True)


def test_batch_topk_counts_every_token_of_a_batch_pos_input():
    pre = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    acts = batch_topk_relu(pre, 4)
    flat = batch_topk_relu(pre.reshape(10, 8), 4).reshape(2, 5, 8)
    assert torch.equal(acts, flat) and int((acts > 0).sum()) == min(40, int((pre > 0).sum()))
