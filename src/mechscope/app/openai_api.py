"""An OpenAI-compatible route serving a loaded model: ``/v1/chat/completions``,
``/v1/completions`` (with log-probabilities, ``echo`` included) and ``/v1/models``.

::

    from fastapi import FastAPI
    app = FastAPI()
    app.include_router(openai_router(model, served_name="smollm2-135m"))
    # steered: every model call runs inside the context the factory makes
    app.include_router(openai_router(model, context=lambda: steer(model, sae, feature=12, alpha=8.0)))

The web app (``mechscope serve``) mounts this router; any OpenAI client (and mechscope's
own HTTP backend) can then use the model, with steering vectors or edits applied when
``context`` says so. Concurrent requests are batched: a worker thread takes the requests
waiting at that moment (up to ``max_batch``) that share their settings and runs them as
one padded batch through :class:`~mechscope.autointerp.backends.local.LocalBackend`.

Supported fields: ``model`` (ignored beyond echoing), ``messages`` / ``prompt`` (a string
or a list), ``max_tokens`` (``max_completion_tokens``), ``temperature``, ``seed``,
``stop``, ``logprobs`` (+ ``top_logprobs`` for chat), ``echo`` (completions), and vLLM's
``continue_final_message`` / ``add_generation_prompt`` (a final assistant message is then
continued). ``n`` must be 1.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException

from mechscope.autointerp.backends.base import Prompt, cut_at_stop
from mechscope.autointerp.backends.local import Generated, LocalBackend, TokenLogprob

MAX_TOP = 20
"""Most alternatives returned per token (OpenAI's own cap for chat)."""


@dataclass
class _Job:
    key: tuple
    rows: list[list[int]]
    future: Future = field(default_factory=Future)


class _Batcher:
    """One worker thread: jobs with the same key, waiting together, run as one batch."""

    def __init__(self, backend: LocalBackend, max_batch: int, wait: float) -> None:
        self.backend, self.max_batch, self.wait = backend, max_batch, wait
        self.jobs: queue.Queue[_Job] = queue.Queue()
        self.held: list[_Job] = []
        threading.Thread(target=self._loop, daemon=True, name="mechscope-openai-batcher").start()

    def run(self, key: tuple, rows: list[list[int]]) -> list:
        job = _Job(key, rows)
        self.jobs.put(job)
        return job.future.result()

    def _loop(self) -> None:
        while True:
            first = self.held.pop(0) if self.held else self.jobs.get()
            group = [first] + [job for job in self.held if job.key == first.key]
            self.held = [job for job in self.held if job.key != first.key]
            deadline = time.monotonic() + self.wait
            while sum(len(j.rows) for j in group) < self.max_batch:
                try:
                    job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                (group if job.key == first.key else self.held).append(job)
            self._run(group)

    def _run(self, group: list[_Job]) -> None:
        rows = [row for job in group for row in job.rows]
        try:
            results = self._call(group[0].key, rows)
        except Exception as error:  # noqa: BLE001 - handed to the waiting request
            for job in group:
                job.future.set_exception(error)
            return
        first = 0
        for job in group:
            job.future.set_result(results[first : first + len(job.rows)])
            first += len(job.rows)

    def _call(self, key: tuple, rows: list[list[int]]) -> list:
        kind, *options = key
        if kind == "prompt":
            return self.backend.prompt_logprobs_ids(rows, top=options[0])
        max_tokens, seed, top, temperature = options
        self.backend.temperature = temperature
        return self.backend.generate_ids(rows, max_tokens=max_tokens, seed=seed, top=top)


def openai_router(model, *, served_name: str | None = None,
                  context: Callable[[], AbstractContextManager] | None = None, max_batch: int = 16,
                  batch_wait: float = 0.005) -> APIRouter:
    """The routes, over ``model`` (a HookedModel); ``context`` is entered around every model call."""
    backend = LocalBackend(model, batch_size=max_batch, context=context)
    batcher = _Batcher(backend, max_batch, batch_wait)
    name = served_name or model.name
    router = APIRouter()

    @router.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "mechscope"}]}

    @router.post("/v1/chat/completions")
    def chat(body: dict[str, Any]) -> dict[str, Any]:
        prompt = _chat_prompt(body)
        top = _top(body.get("top_logprobs", 0) if body.get("logprobs") else None)
        rows = [backend.encode(backend.render(prompt))]
        (generated,) = batcher.run(_generation_key(body, top), rows)
        text = cut_at_stop(generated.text, _stops(body))
        message = {"role": "assistant", "content": text}
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": _finish(generated, body),
                                  "logprobs": None}
        if top is not None:
            steps = _within(generated.steps, text, generated.text)
            choice["logprobs"] = {"content": [_chat_token(step) for step in steps]}
        return _envelope("chat.completion", name, [choice], rows, generated)

    @router.post("/v1/completions")
    def completions(body: dict[str, Any]) -> dict[str, Any]:
        prompts = body.get("prompt")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise HTTPException(400, "prompt must be a string or a non-empty list of strings")
        top = _top(body.get("logprobs"))
        encoded = [backend.tokenizer(p, add_special_tokens=True, return_offsets_mapping=True) for p in prompts]
        rows = [list(e["input_ids"]) for e in encoded]
        if any(len(r) >= model.cfg.n_ctx for r in rows):
            raise HTTPException(400, f"a prompt exceeds the model's context of {model.cfg.n_ctx} tokens")
        max_tokens = body.get("max_tokens", 16)
        generated = (batcher.run(_generation_key(body, top), rows) if max_tokens
                     else [Generated("", (), 0)] * len(rows))
        echoed = batcher.run(("prompt", top or 1), rows) if body.get("echo") else [None] * len(rows)
        choices = []
        for i, (prompt, gen, echo) in enumerate(zip(prompts, generated, echoed)):
            text = cut_at_stop(gen.text, _stops(body))
            choice: dict[str, Any] = {"index": i, "text": (prompt if echo else "") + text,
                                      "finish_reason": _finish(gen, body), "logprobs": None}
            if top is not None:
                starts = [start for start, _ in encoded[i]["offset_mapping"]]
                steps = _within(gen.steps, text, gen.text)
                choice["logprobs"] = _completion_logprobs(backend, rows[i], starts, echo, steps, prompt)
            choices.append(choice)
        return _envelope("text_completion", name, choices, rows, *generated)

    return router


# ------------------------------------------------------------------------ request parsing
def _chat_prompt(body: dict[str, Any]) -> Prompt:
    messages = body.get("messages")
    if body.get("n", 1) != 1:
        raise HTTPException(400, "n must be 1")
    if not isinstance(messages, list) or not messages:
        raise HTTPException(400, "messages must be a non-empty list of {role, content}")
    try:
        turns = [(m["role"], m["content"]) for m in messages]
        prefill = ""
        if body.get("continue_final_message") and turns[-1][0] == "assistant":
            prefill = turns.pop()[1]
        return Prompt(messages=tuple(turns), prefill=prefill)
    except (KeyError, TypeError, ValueError) as error:
        raise HTTPException(400, f"bad messages: {error}") from None


def _top(value) -> int | None:
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HTTPException(400, f"logprobs/top_logprobs must be a non-negative integer; received {value!r}")
    return min(max(value, 1), MAX_TOP) if value else 1


def _generation_key(body: dict[str, Any], top: int | None) -> tuple:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 16))
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise HTTPException(400, f"max_tokens must be a positive integer; received {max_tokens!r}")
    temperature = float(body.get("temperature", 1.0) or 0.0)
    return ("generate", max_tokens, int(body.get("seed", 0) or 0), top, temperature)


def _stops(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop") or []
    return [stop] if isinstance(stop, str) else list(stop)


# ------------------------------------------------------------------------ answers
def _within(steps: tuple[TokenLogprob, ...], text: str, full: str) -> list[TokenLogprob]:
    """The generated tokens that fit in ``text``, the reply ``full`` cut at a stop string."""
    if text == full:
        return list(steps)
    kept, length = [], 0
    for step in steps:
        length += len(step.token)
        if length > len(text) + 1:
            break
        kept.append(step)
    return kept


def _finish(generated: Generated, body: dict[str, Any]) -> str:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 16))
    return "length" if generated.n_tokens >= (max_tokens or 0) > 0 else "stop"


def _chat_token(step: TokenLogprob) -> dict[str, Any]:
    return {"token": step.token, "logprob": step.logprob,
            "top_logprobs": [{"token": t, "logprob": lp} for t, lp in step.top.items()]}


def _completion_logprobs(backend: LocalBackend, row: list[int], starts: list[int], echo,
                         steps: list[TokenLogprob], prompt: str) -> dict[str, Any]:
    tokens, logprobs, tops, offsets = [], [], [], []
    if echo is not None:
        for token_id, start, step in zip(row, starts, echo):
            tokens.append(backend.decode(token_id))
            logprobs.append(None if step is None else step.logprob)
            tops.append(None if step is None else step.top)
            offsets.append(start)
    position = len(prompt) if echo is not None else 0
    for step in steps:
        tokens.append(step.token)
        logprobs.append(step.logprob)
        tops.append(step.top)
        offsets.append(position)
        position += len(step.token)
    return {"tokens": tokens, "token_logprobs": logprobs, "top_logprobs": tops, "text_offset": offsets}


def _envelope(kind: str, name: str, choices: list, rows: list[list[int]], *generated: Generated) -> dict[str, Any]:
    prompt_tokens = sum(len(r) for r in rows)
    completion = sum(g.n_tokens for g in generated)
    return {"id": f"{'chatcmpl' if kind.startswith('chat') else 'cmpl'}-{uuid.uuid4().hex[:24]}", "object": kind,
            "created": int(time.time()), "model": name, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                      "total_tokens": prompt_tokens + completion}}
