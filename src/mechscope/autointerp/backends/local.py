"""A language model mechscope loads, used as an explainer or scorer: offline, batched, seeded.

::

    backend = LocalBackend(load_model("gemma3-270m"), batch_size=8)
    backend.generate([Prompt.chat(("user", "Name a colour."), prefill="A colour:")], max_tokens=5)

Chats are rendered with the tokenizer's chat template (a plain ``role: text`` layout for
models without one) and the ``prefill`` appended. Prompts are sorted by length and run
``batch_size`` at a time, left-padded with position ids restarting at each prompt's
first token, so a prompt's answer does not depend on what it is batched with (up to
float rounding). Greedy decoding by default; with ``temperature > 0`` sampling is seeded
per call, so the same call gives the same text. ``context`` is entered around every
model call: a steering or editing hook context applies to all of them (the OpenAI-
compatible server uses that).
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from mechscope.autointerp.backends.base import Prompt, TopLogprobs, cut_at_stop
from mechscope.errors import InputError, check_int
from mechscope.hooks.tokens import pad_id

MIN_SHARED = 16
"""Shared prefixes shorter than this run with the rest (caching them would not pay)."""


@dataclass(frozen=True)
class TokenLogprob:
    """One token's log-probability and the most likely alternatives at its place."""

    token: str
    """The token, as text."""
    logprob: float
    """Its log-probability."""
    top: TopLogprobs
    """The most likely tokens there (the token itself among them if it ranks)."""


@dataclass(frozen=True)
class Generated:
    """A continuation and, when asked for, its tokens' log-probabilities."""

    text: str
    """The new text (special tokens dropped)."""
    steps: tuple[TokenLogprob, ...]
    """Per new token (and the end-of-sequence token, if one came), its log-probability and
    alternatives (empty unless asked for)."""
    n_tokens: int
    """New tokens (before any end-of-sequence token)."""


class LocalBackend:
    """A :class:`~mechscope.autointerp.backends.base.Backend` over a loaded HookedModel."""

    def __init__(self, model, *, batch_size: int = 8, seed: int = 0, temperature: float = 0.0,
                 context: Callable[[], AbstractContextManager] | None = None) -> None:
        check_int("LocalBackend.batch_size", batch_size, minimum=1)
        check_int("LocalBackend.seed", seed, minimum=0)
        if temperature < 0:
            raise InputError(f"LocalBackend.temperature must be at least 0; received {temperature!r}")
        self.model, self.batch_size, self.seed, self.temperature = model, batch_size, seed, temperature
        self.context = context or contextlib.nullcontext
        self.tokenizer = model.tokenizer
        self.name = f"local:{model.name}"
        self._decoded: dict[int, str] = {}

    def describe(self) -> dict[str, Any]:
        return {"backend": "local", "model": self.model.name, "batch_size": self.batch_size, "seed": self.seed,
                "temperature": self.temperature}

    # ------------------------------------------------------------ rendering
    def render(self, prompt: Prompt) -> str:
        """The prompt as the text the model reads (chat template, then the prefill)."""
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(prompt.as_openai(), tokenize=False, add_generation_prompt=True)
        else:
            text = "".join(f"{role}: {content}\n" for role, content in prompt.messages) + "assistant:"
            text += " " if prompt.prefill else ""
        return text + prompt.prefill

    def encode(self, text: str, *, special: bool = False) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=special)["input_ids"]
        if len(ids) >= self.model.cfg.n_ctx:
            raise InputError(f"a prompt of {len(ids)} tokens exceeds {self.model.name}'s context of "
                             f"{self.model.cfg.n_ctx}; show fewer or shorter examples")
        return ids

    # ------------------------------------------------------------ the protocol
    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        check_int("generate: max_tokens", max_tokens, minimum=1)
        rows = [self.encode(self.render(p)) for p in prompts]
        return [cut_at_stop(g.text, stop) for g in self.generate_ids(rows, max_tokens=max_tokens)]

    def generate_ids(self, rows: Sequence[list[int]], *, max_tokens: int, seed: int | None = None,
                     top: int | None = None) -> list[Generated]:
        """Continuations of token-id prompts; with ``top``, each new token's log-probability
        and its ``top`` alternatives too."""
        out: list[Generated] = [Generated("", (), 0)] * len(rows)
        for chunk in self._chunks(rows):
            ids, mask = self._left_pad([rows[i] for i in chunk])
            new, scores = self._generate(ids, mask, max_tokens, self.seed if seed is None else seed, top is not None)
            for b, i in enumerate(chunk):
                row = new[b].tolist()
                tokens = _until_stop(row, self._stops() | {pad_id(self.tokenizer)})
                steps = ()
                if top is not None:  # the end-of-sequence token has a probability too
                    steps = tuple(self._step(scores[k][b].float().log_softmax(-1), row[k], top)
                                  for k in range(min(len(tokens) + 1, len(row))))
                out[i] = Generated(self.tokenizer.decode(tokens, skip_special_tokens=True), steps, len(tokens))
        return out

    def next_token_logprobs(self, prompts: Sequence[Prompt], *, top: int = 20) -> list[TopLogprobs]:
        return self.next_token_logprobs_ids([self.encode(self.render(p)) for p in prompts], top=top)

    @torch.no_grad()
    def next_token_logprobs_ids(self, rows: Sequence[list[int]], *, top: int = 20,
                                share_prefix: bool = True) -> list[TopLogprobs]:
        """Top next-token log-probabilities after each token-id prompt. With ``share_prefix``,
        the tokens a batch's prompts start with in common (a scorer's instructions and worked
        examples) run once and their keys and values serve every prompt; without it, every
        prompt runs whole (the reference; the tests hold the two together)."""
        check_int("top", top, minimum=1)
        out: list[TopLogprobs] = [{}] * len(rows)
        for chunk in self._chunks(rows):
            batch = [rows[i] for i in chunk]
            shared = _common_prefix(batch) if share_prefix else 0
            logits = self._last_logits_shared(batch, shared) if shared >= MIN_SHARED else self._last_logits(batch)
            for i, row in zip(chunk, logits.float().log_softmax(-1)):
                out[i] = self._top(row, top)
        return out

    def _last_logits(self, rows: list[list[int]]) -> Tensor:
        ids, mask = self._left_pad(rows)
        with self.context():
            return self.model.hf_model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask),
                                       use_cache=False, logits_to_keep=1).logits[:, -1]

    def _last_logits_shared(self, rows: list[list[int]], shared: int) -> Tensor:
        """Last-token logits, running the first ``shared`` tokens (common to all rows) once.
        The rest is right-padded, so that no padding sits between a row's tokens (sliding
        attention windows count cache slots, padding included)."""
        hf = self.model.hf_model
        prefix = torch.tensor([rows[0][:shared]], device=self.model.device)
        rest = [row[shared:] for row in rows]
        width = max(len(r) for r in rest)
        pad = pad_id(self.tokenizer)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rest], device=self.model.device)
        mask = torch.tensor([[1] * (shared + len(r)) + [0] * (width - len(r)) for r in rest], device=self.model.device)
        last = torch.tensor([len(r) - 1 for r in rest], device=self.model.device)
        keep = last.unique()  # logits only where some row ends
        with self.context():
            first = hf(input_ids=prefix, use_cache=True, logits_to_keep=1)
            cache = getattr(first, "cache", None) or first.past_key_values  # renamed in transformers 5.25
            cache.batch_repeat_interleave(len(rows))
            logits = hf(input_ids=ids, attention_mask=mask, use_cache=True, logits_to_keep=keep,
                        **{_cache_argument(hf): cache}).logits
        return logits[torch.arange(len(rows)), torch.searchsorted(keep, last)]

    @torch.no_grad()
    def slot_logprobs(self, texts: Sequence[str], slots: Sequence[Sequence[int]], *, top: int = 20,
                      share_prefix: bool = True) -> list[list[TopLogprobs]]:
        """As the protocol says; ``share_prefix`` as in :meth:`next_token_logprobs_ids`."""
        check_int("top", top, minimum=1)
        if len(texts) != len(slots):
            raise InputError(f"slot_logprobs needs one list of slots per text; received {len(texts)} texts and "
                             f"{len(slots)} slot lists")
        encoded = [self._encode_slots(text, offsets) for text, offsets in zip(texts, slots)]
        out: list[list[TopLogprobs]] = [[] for _ in texts]
        for chunk in self._chunks([ids for ids, _ in encoded], size=max(1, self.batch_size // 2)):
            rows = [encoded[i][0] for i in chunk]
            # logits before each slot's token; a shared prefix must end before the first of them
            wanted = [[k - 1 for k in encoded[i][1]] for i in chunk]
            shared = min(_common_prefix(rows), min(w[0] for w in wanted)) if share_prefix else 0
            if shared < MIN_SHARED:
                shared = 0
            logits = self._logits_at(rows, wanted, shared)
            for i, row_logits in zip(chunk, logits):
                out[i] = [self._top(row, top) for row in row_logits.float().log_softmax(-1)]
        return out

    def _logits_at(self, rows: list[list[int]], wanted: list[list[int]], shared: int) -> list[Tensor]:
        """Per row, the logits at the ``wanted`` positions, the first ``shared`` tokens (common
        to all rows) run once; the rest right-padded (see :meth:`_last_logits_shared`)."""
        hf = self.model.hf_model
        rest = [row[shared:] for row in rows]
        width = max(len(r) for r in rest)
        pad = pad_id(self.tokenizer)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rest], device=self.model.device)
        mask = torch.tensor([[1] * (shared + len(r)) + [0] * (width - len(r)) for r in rest], device=self.model.device)
        keep = torch.tensor(sorted({k - shared for w in wanted for k in w}), device=self.model.device)
        with self.context():
            extra = {}
            if shared:
                first = hf(input_ids=torch.tensor([rows[0][:shared]], device=self.model.device), use_cache=True,
                           logits_to_keep=1)
                cache = getattr(first, "cache", None) or first.past_key_values
                cache.batch_repeat_interleave(len(rows))
                extra = {_cache_argument(hf): cache}
            logits = hf(input_ids=ids, attention_mask=mask, use_cache=bool(shared), logits_to_keep=keep, **extra).logits
        index = [torch.searchsorted(keep, torch.tensor(w, device=keep.device) - shared) for w in wanted]
        return [logits[b, where] for b, where in enumerate(index)]

    # ------------------------------------------------------------ internals
    def _encode_slots(self, text: str, offsets: Sequence[int]) -> tuple[list[int], list[int]]:
        enc = self.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        ids, spans = enc["input_ids"], enc["offset_mapping"]
        starts = {}
        for i, (start, end) in enumerate(spans):
            if end > start:
                starts.setdefault(start, i)
        where = []
        for offset in offsets:
            index = starts.get(offset)
            if index is None or index == 0:
                raise InputError(f"no token of {self.model.name}'s tokenizer starts at character {offset} of the "
                                 f"text (or it is the first); put the slot after a separator such as a tab")
            where.append(index)
        if len(ids) >= self.model.cfg.n_ctx:
            raise InputError(f"a text of {len(ids)} tokens exceeds {self.model.name}'s context of "
                             f"{self.model.cfg.n_ctx}; simulate shorter examples")
        return ids, where

    def _chunks(self, rows: Sequence[list[int]], size: int | None = None) -> list[list[int]]:
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        size = size or self.batch_size
        return [order[i : i + size] for i in range(0, len(order), size)]

    def _left_pad(self, rows: list[list[int]]) -> tuple[Tensor, Tensor]:
        width = max(len(r) for r in rows)
        pad = pad_id(self.tokenizer)
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.model.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.model.device)
        return ids, mask

    def _generate(self, ids: Tensor, mask: Tensor, max_tokens: int, seed: int, scores: bool
                  ) -> tuple[Tensor, tuple[Tensor, ...]]:
        sample = self.temperature > 0
        options = dict(do_sample=sample, max_new_tokens=max_tokens, pad_token_id=pad_id(self.tokenizer),
                       return_dict_in_generate=True, output_logits=scores)
        options |= dict(temperature=self.temperature) if sample else dict(temperature=None, top_k=None, top_p=None)
        cuda = [self.model.device.index or 0] if self.model.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=cuda), self.context():
            torch.manual_seed(seed)
            result = self.model.hf_model.generate(input_ids=ids, attention_mask=mask, **options)
        return result.sequences[:, ids.shape[1] :], tuple(result.logits or ())

    def _stops(self) -> set[int]:
        eos = self.model.hf_model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [] if eos is None else [eos]
        return set(eos) | ({self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set())

    def _step(self, logprobs: Tensor, token: int, top: int) -> TokenLogprob:
        return TokenLogprob(self.decode(token), float(logprobs[token]), self._top(logprobs, top))

    @torch.no_grad()
    def prompt_logprobs_ids(self, rows: Sequence[list[int]], *, top: int) -> list[list[TokenLogprob | None]]:
        """Each prompt token's log-probability given the tokens before it, with its ``top``
        alternatives (None for the first token, which has no context)."""
        out: list[list[TokenLogprob | None]] = [[] for _ in rows]
        for chunk in self._chunks(rows, size=max(1, self.batch_size // 2)):
            ids, mask = self._left_pad([rows[i] for i in chunk])
            with self.context():
                logits = self.model.hf_model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask),
                                             use_cache=False).logits
            for b, i in enumerate(chunk):
                row = rows[i]
                steps = logits[b, ids.shape[1] - len(row) :].float().log_softmax(-1)
                out[i] = [None] + [self._step(steps[k - 1], row[k], top) for k in range(1, len(row))]
        return out

    def decode(self, token: int) -> str:
        if token not in self._decoded:
            self._decoded[token] = self.tokenizer.decode([token])
        return self._decoded[token]

    def _top(self, logprobs: Tensor, top: int) -> TopLogprobs:
        values, indices = logprobs.topk(min(top, logprobs.shape[-1]))
        out: TopLogprobs = {}
        for value, index in zip(values.tolist(), indices.tolist()):
            token = self.decode(index)
            # tokens that decode alike (byte pieces) share one entry: their probabilities add
            out[token] = math.log(math.exp(out[token]) + math.exp(value)) if token in out else value
        return out


def _cache_argument(hf_model) -> str:
    """The forward argument that takes a KV cache: ``cache`` from transformers 5.25 on."""
    return "cache" if "cache" in inspect.signature(hf_model.forward).parameters else "past_key_values"


def _common_prefix(rows: list[list[int]]) -> int:
    """Tokens all rows start with, leaving each row at least one of its own."""
    n = min(len(r) for r in rows) - 1
    first = rows[0]
    for row in rows[1:]:
        k = 0
        while k < n and row[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


def _until_stop(tokens: list[int], stops: set[int]) -> list[int]:
    for k, token in enumerate(tokens):
        if token in stops:
            return tokens[:k]
    return tokens


def _positions(mask: Tensor) -> Tensor:
    return (mask.long().cumsum(-1) - 1).clamp(min=0)
