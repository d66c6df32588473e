"""Language-model backends behind one small protocol (:mod:`~.base`): a model mechscope
loads (:mod:`~.local`) or any OpenAI-compatible server (:mod:`~.http`)::

    backend = make_backend("local:gemma3-270m")
    backend = make_backend("http://127.0.0.1:8000/v1", api_model="smollm2-135m", concurrency=16)
"""

from __future__ import annotations

from mechscope.autointerp.backends.base import Backend, BackendError, Prompt, TopLogprobs
from mechscope.errors import InputError


def make_backend(spec: str, *, api_model: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 4, timeout: float = 60.0, batch_size: int = 8, seed: int = 0,
                 model=None) -> Backend:
    """The backend a spec names: ``local:NAME`` (a model mechscope loads; ``local`` alone
    reuses ``model``, the model being explained) or an ``http(s)://…/v1`` base URL."""
    if spec.startswith(("http://", "https://")):
        from mechscope.autointerp.backends.http import HTTPBackend

        if not api_model:
            raise InputError("an HTTP backend needs the served model's name (api_model=, --api-model)")
        return HTTPBackend(spec, model=api_model, api_key_env=api_key_env, concurrency=concurrency, timeout=timeout,
                           seed=seed)
    if spec == "local" or spec.startswith("local:"):
        from mechscope.autointerp.backends.local import LocalBackend

        name = spec.partition(":")[2]
        if not name and model is None:
            raise InputError("backend 'local' reuses the explained model; name one instead, e.g. local:smollm2-135m")
        if name:
            from mechscope.models import load_model

            model = load_model(name)
        return LocalBackend(model, batch_size=batch_size, seed=seed)
    raise InputError(f"a backend is local:MODEL or an http(s):// base URL of an OpenAI-compatible server; "
                     f"received {spec!r}")


__all__ = ["Backend", "BackendError", "Prompt", "TopLogprobs", "make_backend"]
