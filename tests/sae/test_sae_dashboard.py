"""Feature dashboards: the numbers against direct computation, and HTML that escapes every token."""

from __future__ import annotations

import html
import random
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
import torch
from tiny import VOCAB, WORDS, tiny_hf_model, tiny_tokenizer
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from mechscope import HookedModel
from mechscope.corpus import token_batches
from mechscope.errors import InputError
from mechscope.sae import SAEConfig, SparseAutoencoder
from mechscope.sae.dashboard import feature_dashboard

HOOK = "blocks.0.hook_resid_post"
EVIL = ["<script>alert(1)</script>", "&amp;", '"quoted"', "'single'", "<b>bold</b>", "a&b<"]


def _texts(words=WORDS, n: int = 30, length: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(length)) for _ in range(n)]


def _sae(hook: str = HOOK, d_in: int = 64, seed: int = 0) -> SparseAutoencoder:
    torch.manual_seed(seed)
    return SparseAutoencoder(SAEConfig(d_in=d_in, d_sae=128, architecture="topk", k=8, hook_name=hook))


@pytest.mark.parametrize("arch", ["gpt2", "llama-gqa"])
def test_dashboard_numbers_match_a_direct_computation(arch):
    model = HookedModel(tiny_hf_model(arch), tiny_tokenizer(), name=arch)
    sae = _sae()
    ids = torch.cat(list(token_batches(model, _texts(), seq_len=32, batch_size=8)))[:24]
    boards = feature_dashboard(model, sae, ids, features=[5, 40], n_tokens=10**6, context=(6, 2), progress=False)
    with torch.no_grad():
        latents = sae.encode(model.run_with_cache(ids, names=[HOOK])[1][HOOK])
        unit = sae.W_dec / sae.W_dec.norm(dim=-1, keepdim=True)
    assert boards.n_tokens == ids.numel()
    for board in boards.features:
        acts = latents[..., board.feature]
        firing = acts[acts > 0]
        assert board.density == pytest.approx(firing.numel() / ids.numel())
        assert board.max_activation == pytest.approx(float(firing.max()))
        assert board.mean_activation == pytest.approx(float(firing.mean()), rel=1e-5)
        centers = [ex.activations[ex.center] for ex in board.top_examples]
        assert centers == sorted(centers, reverse=True) and centers[0] == pytest.approx(board.max_activation)
        for ex in board.top_examples + tuple(e for g in board.quantiles for e in g.examples):
            start = ex.position - ex.center
            assert list(ex.tokens) == model.to_str_tokens(ids[ex.row, start : start + len(ex.tokens)])
            assert ex.activations == pytest.approx(acts[ex.row, start : start + len(ex.tokens)].tolist(), abs=1e-5)
        assert sum(board.histogram_counts) == firing.numel()
        assert sum(g.n_tokens for g in board.quantiles) == firing.numel()
        for group in board.quantiles:
            assert all(group.low - 1e-6 <= ex.activations[ex.center] <= group.high + 1e-6 for ex in group.examples)
        lows = [g.low for g in board.quantiles]
        assert lows == sorted(lows, reverse=True)
        sims = unit @ unit[board.feature]
        sims[board.feature] = -2
        assert [i for i, _ in board.neighbors] == sims.topk(5).indices.tolist()
        direction = sae.W_dec[board.feature].detach()
        if arch == "gpt2":
            direction = direction - direction.mean()  # a layer norm subtracts the mean
        weight = model.adapter.norm_weight(model.adapter.norm(None, "ln_final")).detach()
        logits = (direction * weight) @ model.W_U.detach()
        assert [t for t, _ in board.promoted] == model.to_str_tokens(logits.topk(10).indices)
        assert [t for t, _ in board.suppressed] == model.to_str_tokens((-logits).topk(10).indices)


def test_top_n_picks_the_most_frequently_firing_latents():
    model = HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama")
    sae = _sae()
    ids = torch.cat(list(token_batches(model, _texts(), seq_len=32, batch_size=8)))[:16]
    boards = feature_dashboard(model, sae, ids, top=3, n_tokens=10**6, progress=False)
    with torch.no_grad():
        counts = (sae.encode(model.run_with_cache(ids, names=[HOOK])[1][HOOK]) > 0).sum((0, 1))
    assert [b.feature for b in boards.features] == counts.topk(3).indices.tolist()


def test_mlp_neuron_sae_reads_its_logits_through_w_out():
    model = HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama")
    sae = _sae("blocks.1.mlp.hook_post", d_in=96)
    boards = feature_dashboard(model, sae, _texts(), features=[0], n_tokens=512, progress=False)
    direction = sae.W_dec[0].detach() @ model.W_out[1].detach()
    weight = model.adapter.norm_weight(model.adapter.norm(None, "ln_final")).detach()
    top = ((direction * weight) @ model.W_U.detach()).topk(10).indices
    assert [t for t, _ in boards.features[0].promoted] == model.to_str_tokens(top)
    assert "W_out" in boards.logits_note


def _evil_model() -> HookedModel:
    vocab = list(VOCAB[: -len(EVIL)]) + EVIL
    tok = Tokenizer(models.WordLevel({word: i for i, word in enumerate(vocab)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", bos_token="[BOS]", unk_token="[UNK]")
    return HookedModel(tiny_hf_model("gpt2"), tokenizer, name="<img src=x onerror=alert(1)>")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.add(tag)
        self.attrs += attrs


def test_every_model_token_is_escaped_in_the_html(tmp_path):
    model = _evil_model()
    words = EVIL * 4 + list(WORDS[:20])
    boards = feature_dashboard(model, _sae(), _texts(words), top=4, n_tokens=2048, progress=False)
    shown = {t for b in boards.features for ex in b.top_examples for t in ex.tokens}
    assert set(EVIL) <= shown  # the nasty tokens really are on the page
    page = boards.to_html(tmp_path / "boards.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "<b>" not in page and "<img" not in page
    for token in EVIL:
        assert html.escape(token, quote=True) in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&amp;amp;" in page
    assert "&quot;quoted&quot;" in page and "&#x27;single&#x27;" in page
    parser = _Tags()
    parser.feed(page)
    assert parser.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "h4", "p", "nav",
                           "a", "section", "div", "span", "svg", "rect", "text", "table", "tr", "td", "code"}
    # self-contained: no attribute fetches anything, links stay on the page, no event handlers
    names = {name for name, _ in parser.attrs}
    assert names <= {"lang", "charset", "class", "href", "id", "style", "title", "xmlns", "width", "height", "role",
                     "aria-label", "x", "y", "fill", "font-size", "text-anchor"}
    assert all(value.startswith("#") for name, value in parser.attrs if name == "href")
    assert "@import" not in page and "url(" not in page


def test_dashboards_save_as_json_and_check_their_arguments(tmp_path):
    model = HookedModel(tiny_hf_model("gpt2"), tiny_tokenizer(), name="gpt2")
    sae = _sae()
    boards = feature_dashboard(model, sae, _texts(), features=[1], n_tokens=256, progress=False)
    assert boards.save(tmp_path / "boards.json").exists()
    assert boards.to_dict()["features"][0]["feature"] == 1
    with pytest.raises(InputError, match="is a directory"):
        boards.to_html(tmp_path)
    with pytest.raises(InputError, match="either features"):
        feature_dashboard(model, sae, _texts(), features=[1], top=2)
    with pytest.raises(InputError, match=r"1\.\.128 \(the SAE's width\)"):
        feature_dashboard(model, sae, _texts(), top=500)
    with pytest.raises(InputError, match="has 128 latents"):
        feature_dashboard(model, sae, _texts(), features=[128])


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless chromium is not installed (make e2e-setup installs it)")
def test_a_dashboard_page_renders_in_headless_chromium(tmp_path):  # pragma: no cover - optional
    model = HookedModel(tiny_hf_model("gpt2"), tiny_tokenizer(), name="gpt2")
    page = feature_dashboard(model, _sae(), _texts(), features=[1], n_tokens=256, progress=False).to_html(
        tmp_path / "page.html")
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=60).stdout
    assert "Feature 1" in dom and "<script" not in dom.lower()
