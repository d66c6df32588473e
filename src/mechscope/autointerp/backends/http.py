"""Any OpenAI-compatible server as a backend: vLLM, llama.cpp's server, Ollama, a hosted API,
or ``mechscope serve``'s own route.

::

    backend = HTTPBackend("http://127.0.0.1:8000/v1", model="smollm2-135m", concurrency=8)

* ``generate`` and ``next_token_logprobs`` use ``/chat/completions`` (the latter with
  ``max_tokens=1, logprobs=true, top_logprobs=k``); a prefill is sent as a final assistant
  message with vLLM's ``continue_final_message`` (servers without it start a new reply);
* ``slot_logprobs`` uses ``/completions`` with ``echo=true`` and ``logprobs=k``: the
  prompt's own tokens with their top alternatives (vLLM, llama.cpp with
  ``--logits_all``, mechscope; hosted APIs retired it, and the simulator then fails with
  a :class:`BackendError` that says so).

Requests run on ``concurrency`` threads; each is retried ``retries`` times with
exponential backoff after a connection error, a timeout, or a 408/429/5xx answer. The
API key is read from the environment variable ``api_key_env`` when the backend is made;
it is sent as a bearer token and appears in no repr, description, file or error message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from mechscope.autointerp.backends.base import BackendError, Prompt, TopLogprobs, cut_at_stop
from mechscope.errors import InputError, check_int

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class HTTPBackend:
    """A :class:`~mechscope.autointerp.backends.base.Backend` over an OpenAI-compatible server."""

    def __init__(self, base_url: str, *, model: str, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 4,
                 timeout: float = 60.0, retries: int = 3, backoff: float = 0.5, seed: int = 0,
                 temperature: float = 0.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"the server's base URL must start with http:// or https://; received {base_url!r}")
        check_int("HTTPBackend.concurrency", concurrency, minimum=1)
        check_int("HTTPBackend.retries", retries, minimum=0)
        if timeout <= 0 or backoff < 0:
            raise InputError(f"HTTPBackend.timeout must be positive and backoff non-negative; received "
                             f"{timeout!r}, {backoff!r}")
        self.base_url = base_url.rstrip("/")
        self.model, self.concurrency, self.timeout = model, concurrency, timeout
        self.retries, self.backoff = retries, backoff
        self.seed, self.temperature, self.api_key_env = seed, temperature, api_key_env
        key = os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers,
                                    limits=httpx.Limits(max_connections=concurrency))
        self.name = f"http:{model}@{self.base_url}"

    def __repr__(self) -> str:
        return f"HTTPBackend({self.base_url!r}, model={self.model!r}, concurrency={self.concurrency})"

    def describe(self) -> dict[str, Any]:
        return {"backend": "http", "base_url": self.base_url, "model": self.model, "concurrency": self.concurrency,
                "api_key_env": self.api_key_env, "seed": self.seed, "temperature": self.temperature}

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------ the protocol
    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        check_int("generate: max_tokens", max_tokens, minimum=1)
        bodies = [self._chat(p, max_tokens=max_tokens) for p in prompts]
        answers = self._post_all("/chat/completions", bodies)
        return [cut_at_stop(_field(a, "choices", 0, "message", "content") or "", stop) for a in answers]

    def next_token_logprobs(self, prompts: Sequence[Prompt], *, top: int = 20) -> list[TopLogprobs]:
        bodies = [self._chat(p, max_tokens=1) | {"logprobs": True, "top_logprobs": top} for p in prompts]
        out = []
        for answer in self._post_all("/chat/completions", bodies):
            content = _field(answer, "choices", 0, "logprobs", "content")
            if not content:
                raise BackendError(f"{self.base_url} returned no log-probabilities for a chat completion; "
                                   f"the server must support logprobs/top_logprobs")
            out.append({t["token"]: float(t["logprob"]) for t in content[0].get("top_logprobs", [])})
        return out

    def slot_logprobs(self, texts: Sequence[str], slots: Sequence[Sequence[int]], *,
                      top: int = 20) -> list[list[TopLogprobs]]:
        bodies = [{"model": self.model, "prompt": text, "max_tokens": 1, "echo": True, "logprobs": top,
                   "temperature": 0.0} for text in texts]
        out = []
        for answer, offsets in zip(self._post_all("/completions", bodies), slots):
            logprobs = _field(answer, "choices", 0, "logprobs") or {}
            starts, tops = logprobs.get("text_offset"), logprobs.get("top_logprobs")
            if not starts or not tops:
                raise BackendError(f"{self.base_url} did not echo the prompt's log-probabilities (/completions with "
                                   f"echo and logprobs); the simulator needs a server that does (vLLM, llama.cpp "
                                   f"with --logits_all, mechscope serve)")
            where = {start: i for i, start in reversed(list(enumerate(starts)))}
            missing = [o for o in offsets if o not in where or tops[where[o]] is None]
            if missing:
                raise BackendError(f"no echoed token of {self.base_url} starts at character {missing[0]}")
            out.append([{k: float(v) for k, v in tops[where[o]].items()} for o in offsets])
        return out

    # ------------------------------------------------------------ internals
    def _chat(self, prompt: Prompt, *, max_tokens: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": prompt.as_openai(), "max_tokens": max_tokens,
                                "temperature": self.temperature, "seed": self.seed}
        if prompt.prefill:
            body["messages"] = body["messages"] + [{"role": "assistant", "content": prompt.prefill}]
            body |= {"continue_final_message": True, "add_generation_prompt": False}
        return body

    def _post_all(self, path: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(bodies) <= 1 or self.concurrency == 1:
            return [self._post(path, body) for body in bodies]
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda body: self._post(path, body), bodies))

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._client.post(path, json=body)
            except httpx.TimeoutException:
                problem = f"no answer within {self.timeout} s"
                continue
            except httpx.TransportError as error:
                problem = f"could not connect ({type(error).__name__})"
                continue
            if response.status_code in RETRY_STATUS:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise BackendError(f"{self.base_url}{path} answered HTTP {response.status_code}: "
                                   f"{response.text[:300]}")
            try:
                return response.json()
            except ValueError:
                raise BackendError(f"{self.base_url}{path} answered something that is not JSON") from None
        raise BackendError(f"{self.base_url}{path} failed after {self.retries + 1} tries: {problem}; is the server "
                           f"running, and is --api-model right?")


def _field(data: Any, *path: Any) -> Any:
    """``data[path[0]][path[1]]...``, or None where any step is missing."""
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data
