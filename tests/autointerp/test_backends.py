"""The local backend (batched = one at a time; slots in one pass = prefix by prefix), and the
HTTP backend against mechscope's own OpenAI-compatible route served on loopback: the same
numbers, retries, timeouts, the key never written, steering applied by the server."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from fastapi import FastAPI, HTTPException, Request
from serving import serving

from mechscope.app.openai_api import openai_router
from mechscope.autointerp.backends import BackendError, Prompt, make_backend
from mechscope.autointerp.backends.http import HTTPBackend
from mechscope.autointerp.backends.local import LocalBackend
from mechscope.errors import InputError

PROMPTS = [Prompt.chat(("user", "when mary and john went to the store")),
           Prompt.chat(("system", "one two"), ("user", "the cat sat on the mat"), prefill="paris is"),
           Prompt.chat(("user", "big red dog"))]
TEXT = "when mary and john went to the store , john gave a drink to"
SLOTS = [TEXT.index("john"), TEXT.index("store"), TEXT.index("drink")]


def _close(a: dict, b: dict, tol: float = 1e-4) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) < tol for k in a)


def test_a_batch_gives_each_prompt_what_it_gets_alone(tiny_model):
    batched = LocalBackend(tiny_model, batch_size=3).next_token_logprobs(PROMPTS, top=5)
    alone = [LocalBackend(tiny_model, batch_size=1).next_token_logprobs([p], top=5)[0] for p in PROMPTS]
    assert all(_close(a, b) for a, b in zip(batched, alone))
    texts = LocalBackend(tiny_model, batch_size=3).generate(PROMPTS, max_tokens=4)
    assert texts == [LocalBackend(tiny_model).generate([p], max_tokens=4)[0] for p in PROMPTS]
    assert texts == LocalBackend(tiny_model, batch_size=2).generate(PROMPTS, max_tokens=4)  # deterministic


def test_slots_in_one_pass_equal_the_prefix_by_prefix_reference(tiny_model):
    backend = LocalBackend(tiny_model, batch_size=2)
    (fast,) = backend.slot_logprobs([TEXT], [SLOTS], top=6)
    ids = backend.tokenizer(TEXT)["input_ids"]
    starts = [s for s, _ in backend.tokenizer(TEXT, return_offsets_mapping=True)["offset_mapping"]]
    reference = backend.next_token_logprobs_ids([ids[: starts.index(s)] for s in SLOTS], top=6)
    echoed = backend.prompt_logprobs_ids([ids], top=6)[0]
    for slot, a, b in zip(SLOTS, fast, reference):
        assert _close(a, b)
        assert _close(a, echoed[starts.index(slot)].top)


def test_a_slot_inside_a_token_is_refused(tiny_model):
    with pytest.raises(InputError, match="no token"):
        LocalBackend(tiny_model).slot_logprobs([TEXT], [[SLOTS[0] + 1]])


@pytest.fixture(scope="module")
def server(tiny_model):
    app = FastAPI()
    app.include_router(openai_router(tiny_model, served_name="tiny"))
    with serving(app) as url:
        yield url


def test_http_backend_over_mechscopes_route_gives_the_local_numbers(tiny_model, server):
    local = LocalBackend(tiny_model)
    for concurrency in (1, 4):
        http = HTTPBackend(server, model="tiny", concurrency=concurrency)
        assert all(_close(a, b) for a, b in zip(http.next_token_logprobs(PROMPTS, top=5),
                                               local.next_token_logprobs(PROMPTS, top=5)))
        assert http.generate(PROMPTS, max_tokens=4) == local.generate(PROMPTS, max_tokens=4)
        (echoed,) = http.slot_logprobs([TEXT], [SLOTS], top=6)
        assert all(_close(a, b) for a, b in zip(echoed, local.slot_logprobs([TEXT], [SLOTS], top=6)[0]))


def test_completions_echo_the_prompt_with_offsets(server):
    import httpx

    answer = httpx.post(f"{server}/completions", json={"model": "tiny", "prompt": TEXT, "max_tokens": 2,
                                                       "echo": True, "logprobs": 3, "temperature": 0}).json()
    (choice,) = answer["choices"]
    logprobs = choice["logprobs"]
    assert choice["text"].startswith(TEXT) and logprobs["top_logprobs"][0] is None
    n_prompt = len(logprobs["tokens"]) - 2
    assert [TEXT[o : o + len(t)] for o, t in zip(logprobs["text_offset"], logprobs["tokens"])][:n_prompt] == \
        logprobs["tokens"][:n_prompt]
    assert all(len(top) == 3 for top in logprobs["top_logprobs"][1:])
    assert answer["usage"]["completion_tokens"] == 2
    models = httpx.get(f"{server}/models").json()
    assert models["data"][0]["id"] == "tiny"
    bad = httpx.post(f"{server}/chat/completions", json={"model": "tiny", "messages": []})
    assert bad.status_code == 400


def test_the_server_applies_a_steering_context(tiny_model):
    def zero_mlp(tensor, hook):
        return torch.zeros_like(tensor)

    steer = lambda: tiny_model.hooks(fwd=[("blocks.1.hook_mlp_out", zero_mlp)])  # noqa: E731
    app = FastAPI()
    app.include_router(openai_router(tiny_model, context=steer))
    with serving(app) as url:
        steered = HTTPBackend(url, model="tiny").next_token_logprobs(PROMPTS[:1], top=5)[0]
    plain = LocalBackend(tiny_model).next_token_logprobs(PROMPTS[:1], top=5)[0]
    assert _close(steered, LocalBackend(tiny_model, context=steer).next_token_logprobs(PROMPTS[:1], top=5)[0])
    assert not _close(steered, plain)
    assert not tiny_model.hf_model._forward_hooks and all(not m._forward_hooks for m in tiny_model.hf_model.modules())


def _flaky_app(failures: int, seen: list):
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        seen.append(request.headers.get("authorization"))
        if len(seen) <= failures:
            raise HTTPException(503, "busy")
        top = [{"token": " Yes", "logprob": math.log(0.8)}, {"token": " No", "logprob": math.log(0.2)}]
        return {"choices": [{"message": {"content": "ok"}, "logprobs": {"content": [{"token": " Yes",
                "logprob": math.log(0.8), "top_logprobs": top}]}}]}

    return app


def test_retries_then_success_and_the_key_stays_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("MECHSCOPE_TEST_KEY", "s3cret-value")
    seen: list = []
    with serving(_flaky_app(2, seen)) as url:
        backend = make_backend(url, api_model="m", api_key_env="MECHSCOPE_TEST_KEY")
        backend.backoff = 0.01
        (top,) = backend.next_token_logprobs(PROMPTS[:1])
    assert len(seen) == 3 and seen[-1] == "Bearer s3cret-value" and abs(top[" Yes"] - math.log(0.8)) < 1e-9
    assert "s3cret" not in repr(backend) and "s3cret" not in json.dumps(backend.describe())
    assert backend.describe()["api_key_env"] == "MECHSCOPE_TEST_KEY"


def test_too_many_failures_and_timeouts_raise_backend_errors():
    seen: list = []
    with serving(_flaky_app(10, seen)) as url:
        backend = HTTPBackend(url, model="m", retries=1, backoff=0.01)
        with pytest.raises(BackendError, match="failed after 2 tries: HTTP 503"):
            backend.generate(PROMPTS[:1], max_tokens=2)
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def slow():
        import asyncio

        await asyncio.sleep(2)
        return {}

    with serving(app) as url:
        with pytest.raises(BackendError, match="no answer within 0.2 s"):
            HTTPBackend(url, model="m", retries=0, timeout=0.2).generate(PROMPTS[:1], max_tokens=2)


def test_backend_specs_are_checked():
    with pytest.raises(InputError, match="api_model"):
        make_backend("http://127.0.0.1:1/v1")
    with pytest.raises(InputError, match="local:MODEL"):
        make_backend("gpt-4")
    with pytest.raises(InputError, match="reuses the explained model"):
        make_backend("local")


@pytest.mark.parametrize("arch", ["llama-gqa", "gpt2", "gemma3-gqa", "neox-parallel"])
def test_a_shared_prefix_run_once_equals_every_prompt_run_whole(arch, tokenizer):
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    model = HookedModel(tiny_hf_model(arch), tokenizer, name=arch)
    backend = LocalBackend(model, batch_size=4)
    head = backend.tokenizer("when mary and john went to the store , john gave a drink to tom and alice")["input_ids"]
    rows = [head + backend.tokenizer(tail)["input_ids"] for tail in ("mary", "the big red dog", "one two", "paris")]
    fast = backend.next_token_logprobs_ids(rows, top=8)
    slow = backend.next_token_logprobs_ids(rows, top=8, share_prefix=False)
    assert len(head) >= 16 and all(_close(a, b, 1e-4) for a, b in zip(fast, slow))


@pytest.mark.parametrize("arch", ["llama-gqa", "gemma3-gqa"])
def test_slots_with_a_shared_prefix_equal_slots_run_whole(arch, tokenizer):
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    backend = LocalBackend(HookedModel(tiny_hf_model(arch), tokenizer, name=arch), batch_size=4)
    head = "when mary and john went to the store , john gave a drink to tom and alice "
    texts = [head + tail for tail in ("the big red dog sat", "one two three", "paris is a city of cat")]
    slots = [[len(head) + m.start() for m in re.finditer(r"\S+", text[len(head):])][1:] for text in texts]
    fast = backend.slot_logprobs(texts, slots, top=6)
    slow = backend.slot_logprobs(texts, slots, top=6, share_prefix=False)
    assert all(_close(a, b) for f, s in zip(fast, slow) for a, b in zip(f, s))
    assert [len(f) for f in fast] == [len(s) for s in slots]
