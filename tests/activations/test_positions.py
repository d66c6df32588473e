"""Reading activations at chosen positions of prompts: every rule against the full cache."""

from __future__ import annotations

import pytest
import torch

from tiny import tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.activations.positions import Position, position_weights, read_positions
from mechscope.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")
TEXTS = ["the cat sat on the mat", "when mary and john went to the store", "one two three"]
HOOKS = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_z"]


@pytest.fixture(scope="module")
def llama() -> HookedModel:
    return HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama-gqa")


def _cache(model, text, prepend_bos=None):
    _, cache = model.run_with_cache(model.tokenize(text, prepend_bos=prepend_bos), names=HOOKS)
    return {name: cache[name][0].flatten(1) for name in HOOKS}   # pos width


@pytest.mark.parametrize("arch", ["llama-gqa", "gpt2", "gemma3-gqa", "neox-parallel"])
def test_each_rule_reads_the_tokens_it_names(tiny, arch):
    rules = {  # rule -> (prompt index, token indices read, reduction)
        "last": (0, [5], "mean"), "mean": (1, list(range(8)), "mean"), "word:cat": (0, [1], "mean"),
        "word:mary and john": (1, [1, 2, 3], "mean"), "word:mary and john@last": (1, [3], "last"),
        "span:4:11": (2, [1, 2], "mean"), "index:-2": (2, [1], "mean"), "index:0": (1, [0], "mean"),
    }
    for text_rule, (prompt, tokens, _) in rules.items():
        read = read_positions(tiny, HOOKS, [TEXTS[prompt], TEXTS[2]], [Position.parse(text_rule), Position()])
        full = _cache(tiny, TEXTS[prompt])
        for name in HOOKS:
            torch.testing.assert_close(read.acts[name][0], full[name][tokens].mean(0), atol=1e-5, rtol=1e-5)
        assert read.tokens[0] == tiny.tokenizer.decode(tiny.to_tokens(TEXTS[prompt])[0, tokens].tolist())


def test_batches_and_padding_do_not_change_a_prompts_reading(llama):
    alone = [read_positions(llama, HOOKS[0], [text], Position.parse("mean")).acts[HOOKS[0]] for text in TEXTS]
    together = read_positions(llama, HOOKS[0], TEXTS, Position.parse("mean"), batch_size=2).acts[HOOKS[0]]
    torch.testing.assert_close(together, torch.cat(alone), atol=1e-5, rtol=1e-5)


def test_bos_is_never_read(llama):
    read = read_positions(llama, HOOKS[0], TEXTS[:1], Position.parse("mean"), prepend_bos=True)
    full = _cache(llama, TEXTS[0], prepend_bos=True)[HOOKS[0]]
    torch.testing.assert_close(read.acts[HOOKS[0]][0], full[1:].mean(0), atol=1e-5, rtol=1e-5)
    index = read_positions(llama, HOOKS[0], TEXTS[:1], Position.parse("index:0"), prepend_bos=True)
    torch.testing.assert_close(index.acts[HOOKS[0]][0], full[1], atol=1e-5, rtol=1e-5)


def test_a_transform_applies_to_each_token_before_pooling(llama):
    read = read_positions(llama, HOOKS[0], TEXTS[:1], Position.parse("mean"), transform=torch.relu)
    full = _cache(llama, TEXTS[0])[HOOKS[0]]
    torch.testing.assert_close(read.acts[HOOKS[0]][0], full.relu().mean(0), atol=1e-5, rtol=1e-5)
    assert (full.mean(0).relu() - full.relu().mean(0)).abs().max() > 1e-2  # the order matters


def test_names_round_trip_and_weights_sum_to_one(llama):
    for text in ("last", "mean", "word:cat", "word:cat@last", "span:3:9", "index:-1", "index:2@last"):
        assert Position.parse(text).name == text
    _, weights, _ = position_weights(llama, TEXTS, [Position.parse(t) for t in ("mean", "word:mary", "index:1")])
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))


@pytest.mark.parametrize("text, message", [
    ("first", "Position.rule must be one of"), ("word:", "Position.word must be a non-empty word"),
    ("span:5:2", "0 <= start < end"), ("index:x", "cannot read position"), ("last@max", "Position.reduce"),
])
def test_bad_positions_are_refused(text, message):
    with pytest.raises(InputError, match=message):
        Position.parse(text)


@pytest.mark.parametrize("position, message", [
    ("word:dog", "prompt 0: the word 'dog' does not occur"), ("span:3:99", "runs past the end"),
    ("index:40", "outside"),
])
def test_positions_that_miss_the_prompt_say_which_prompt(llama, position, message):
    with pytest.raises(InputError, match=message):
        read_positions(llama, HOOKS[0], TEXTS[:1], Position.parse(position))
