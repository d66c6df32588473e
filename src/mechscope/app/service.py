"""The model behind the live pages: loaded once, on first need, and used by one thread.

::

    service = ModelService(name="smollm2-135m")          # nothing loaded yet
    result = await service.call(next_tokens, "The Eiffel Tower is in", 10)

Every call that needs the model (or the SAE) runs on a single worker thread, one after
another, so two requests never run hooks on the model at once; the pages that only read
the store run elsewhere (Starlette's thread pool) and never wait for it. The first call
loads the model (a name given to ``mechscope serve --model``, else the model the first
request asks for); a request for another model is refused with a message, not served
with the wrong one.

Results of a few expensive calls (attention patterns of a prompt, head roles) are kept
in a small cache keyed by what they depend on, so a page that asks for one layer at a
time computes the prompt once.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mechscope.errors import InputError, MechscopeError


class ModelMismatch(MechscopeError):
    """A request asked for a model other than the one this server holds."""


class NoModel(MechscopeError):
    """A live page was asked for but the server knows no model to load."""


class ModelService:
    """One model (and optionally SAEs), loaded lazily, used from one worker thread."""

    def __init__(self, *, name: str | None = None, model=None, sae_paths: tuple[str, ...] = (), saes=None,
                 loader: Callable[[str], Any] | None = None, cache_size: int = 8) -> None:
        self._name = model.name if model is not None else name
        self._model = model
        self._sae_paths, self._saes = tuple(sae_paths), saes
        self._loader = loader
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mechscope-model")
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def name(self) -> str | None:
        """The model's name: loaded, or to be loaded (None: not chosen yet)."""
        return self._name

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def has_sae(self) -> bool:
        return bool(self._sae_paths) or bool(self._saes)

    async def call(self, fn: Callable, *args, model_name: str | None = None, cache_key: tuple | None = None):
        """``fn(model, *args)`` on the worker thread (loading the model first if needed).

        ``model_name``: the model the request is about (e.g. a stored run's); refused if the
        server holds another. ``cache_key``: keep the result under this key."""
        if cache_key is not None:
            with self._lock:
                if cache_key in self._cache:
                    self._cache.move_to_end(cache_key)
                    return self._cache[cache_key]
        future = self._worker.submit(self._run, fn, args, model_name)
        result = await asyncio.wrap_future(future)
        if cache_key is not None:
            with self._lock:
                self._cache[cache_key] = result
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return result

    async def call_with_saes(self, fn: Callable, *args):
        """``fn(model, saes, *args)`` on the worker thread; ``saes`` is a tuple (empty without any)."""
        return await self.call(lambda model, *rest: fn(model, self._load_saes(), *rest), *args)

    def _run(self, fn: Callable, args: tuple, model_name: str | None):
        return fn(self._ensure(model_name), *args)

    def _ensure(self, wanted: str | None):
        """The model, loaded on first use (runs on the worker thread only)."""
        if self._name is None:
            if wanted is None:
                raise NoModel("no model is loaded: start the server with --model NAME (e.g. smollm2-135m), "
                              "or open the page from a stored run")
            self._name = wanted
        if wanted is not None and wanted != self._name:
            raise ModelMismatch(f"this server holds {self._name}; the request is about {wanted}. Restart with "
                                f"`mechscope serve --model {wanted}` to look at that model live")
        if self._model is None:
            loader = self._loader
            if loader is None:
                from mechscope.models import load_model as loader
            self._model = loader(self._name)
        return self._model

    def _load_saes(self) -> tuple:
        if self._saes is None:
            from mechscope.sae import load_sae

            model = self._model
            device = None if model is None else model.device
            self._saes = tuple(load_sae(path, device=device) for path in self._sae_paths)
        return tuple(self._saes)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)


def check_prompt(prompt: str, max_chars: int) -> str:
    """The prompt, refused when empty or longer than ``max_chars`` characters."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("the prompt is empty; type some text, e.g. 'When Mary and John went to the store, John "
                         "gave a drink to'")
    if len(prompt) > max_chars:
        raise InputError(f"the prompt has {len(prompt):,} characters; the limit here is {max_chars:,}")
    return prompt
