"""The value an edit should write: a vector optimised so that the model says the new target.

ROME (``site="mlp"``) adds a vector δ to the output of one layer's MLP output projection
at the subject's last token; MEMIT (``site="resid"``) adds it to the residual stream
after the last edited layer. δ minimises, as in the papers' code,

    mean over prefixed prompts of −log p(target | prompt)                       (efficacy)
    + kl_factor · KL(p(· | "{subject} is a") ‖ the same before the edit)        (essence)
    + weight_decay · ‖δ‖ / ‖v₀‖²                                                 (keep it small)

with Adam, δ clamped to ``clamp_norm · ‖v₀‖`` (v₀ the unedited output), stopping early
once the loss is below ``stop_loss``. The result is ``v₀ + δ``.

Everything before the edited layer is fixed, so each step runs only the blocks from that
layer on, from the unedited run's cached residual (:mod:`mechscope.hooks.replay`), and
differentiates with respect to δ alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.errors import InputError
from mechscope.facts.counterfact import Rewrite
from mechscope.hooks.replay import record_block_inputs, replay_names, run_from
from mechscope.hooks.tokens import batch_from_ids, pad_id
from mechscope.editing.context import subject_last, with_prefixes

AddFn = Callable[[Tensor], Tensor]
"""Maps a site's output (rows, pos, d_model) to the output with δ added."""


@dataclass(frozen=True, kw_only=True)
class ValueConfig:
    """Hyperparameters of the value optimisation (the papers' GPT-2 XL values by default)."""

    steps: int = 20
    """Most Adam steps."""
    lr: float = 0.5
    """Adam's learning rate."""
    weight_decay: float = 0.5
    """Weight of ``‖δ‖ / ‖v₀‖²``."""
    clamp_norm: float = 4.0
    """δ is kept within ``clamp_norm · ‖v₀‖``."""
    kl_factor: float = 0.0625
    """Weight of the KL term on the essence prompt."""
    stop_loss: float = 0.05
    """Stop once the total loss falls below this."""
    kl_prompt: str = "{} is a"
    """The essence prompt; ``{}`` is the subject."""

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise InputError(f"ValueConfig.steps must be a positive integer; received {self.steps!r}")
        for name in ("lr", "clamp_norm"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) <= 0:
                raise InputError(f"ValueConfig.{name} must be positive; received {getattr(self, name)!r}")
        for name in ("weight_decay", "kl_factor", "stop_loss"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) < 0:
                raise InputError(f"ValueConfig.{name} must be non-negative; received {getattr(self, name)!r}")
        if self.kl_prompt.count("{}") != 1:
            raise InputError(f"ValueConfig.kl_prompt must hold one {{}} for the subject; received {self.kl_prompt!r}")


@dataclass(frozen=True)
class Value:
    """The optimised value and how the optimisation went."""

    target: Float[Tensor, "d_model"]
    """``v₀ + δ``: what the site should output at the subject's last token."""
    init: Float[Tensor, "d_model"]
    """``v₀``: the unedited output there (bare prompt)."""
    losses: tuple[float, ...]
    """Total loss at each step."""
    target_prob: float
    """Mean p(target) over the prefixed prompts at the last step."""


@contextmanager
def _at_mlp(model, layer: int, add: AddFn) -> Iterator[None]:
    module = model.adapter.in_block(layer, model.adapter.mlp_out_proj_path)
    handle = module.register_forward_hook(lambda mod, args, out: add(out))
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def _at_resid(model, layer: int, add: AddFn) -> Iterator[None]:
    with model.hooks(fwd=[(f"blocks.{layer}.hook_resid_post", lambda tensor, hook: add(tensor))]):
        yield


SITES: dict[str, Callable[..., object]] = {"mlp": _at_mlp, "resid": _at_resid}
"""Where δ is added: the MLP output projection's output (ROME), the residual after the layer (MEMIT)."""


@dataclass(frozen=True)
class _Batch:
    ids: object  # TokenBatch
    lookup: Tensor  # rows: subject's last token
    readout: Tensor  # rows: where the loss reads logits (first target token; last token for the KL row)
    target: Tensor  # target token ids


def _batch(model, rewrite: Rewrite, templates: Sequence[str], kl_prompt: str) -> _Batch:
    target = model.tokenizer(" " + rewrite.target_new.strip(), add_special_tokens=False)["input_ids"]
    rows, lookup, readout = [], [], []
    for text, offset in with_prefixes(templates, rewrite.text):
        ids = model.to_tokens(text)[0].tolist()
        rows.append(ids + target[:-1])
        lookup.append(subject_last(model, text, offset, rewrite.subject))
        readout.append(len(ids) - 1)
    essence = kl_prompt.replace("{}", rewrite.subject)
    rows.append(model.to_tokens(essence)[0].tolist())
    lookup.append(subject_last(model, essence, 0, rewrite.subject))
    readout.append(len(rows[-1]) - 1)
    batch = batch_from_ids(rows, pad_id=pad_id(model.tokenizer), padding_side="right").to(model.device)
    return _Batch(batch, torch.tensor(lookup), torch.tensor(readout), torch.tensor(target, device=model.device))


def optimize_value(model, rewrite: Rewrite, *, layer: int, site: str, templates: Sequence[str],
                   config: ValueConfig = ValueConfig()) -> Value:
    """Optimise δ at ``site`` of ``layer`` (see the module docstring)."""
    batch = _batch(model, rewrite, templates, config.kl_prompt)
    n_rows, n_target = batch.ids.ids.shape[0], len(batch.target)
    rows = torch.arange(n_rows, device=model.device)
    with torch.no_grad(), record_block_inputs(model) as inputs:
        _, cache = model.run_with_cache(batch.ids, names=replay_names(model))
    delta = torch.zeros(model.cfg.d_model, device=model.device, dtype=model.dtype, requires_grad=True)
    seen: dict[str, Tensor] = {}

    def add(out: Tensor) -> Tensor:
        seen.setdefault("init", out[0, int(batch.lookup[0])].detach().clone())
        out = out.clone()
        out[rows, batch.lookup.to(out.device)] = out[rows, batch.lookup.to(out.device)] + delta
        return out

    optimizer = torch.optim.Adam([delta], lr=config.lr)
    losses, kl_init, target_prob = [], None, 0.0
    for step in range(config.steps):
        with torch.enable_grad(), SITES[site](model, layer, add):
            logprobs = _logprobs(model, inputs, cache, layer, batch, n_target)
            target_logprob = logprobs[:-1, torch.arange(n_target), batch.target].mean(-1)
            essence = logprobs[-1, 0]
            kl_init = essence.detach() if kl_init is None else kl_init
            kl = torch.nn.functional.kl_div(kl_init, essence, log_target=True, reduction="sum")
            decay = delta.norm() / seen["init"].norm() ** 2
            loss = -target_logprob.mean() + config.kl_factor * kl + config.weight_decay * decay
        losses.append(float(loss.detach()))
        target_prob = float(target_logprob.detach().exp().mean())
        if losses[-1] < config.stop_loss or step == config.steps - 1:
            break
        (delta.grad,) = torch.autograd.grad(loss, [delta])
        optimizer.step()
        with torch.no_grad():
            limit = config.clamp_norm * seen["init"].norm()
            if delta.norm() > limit:
                delta.mul_(limit / delta.norm())
    init = seen["init"]
    return Value(target=(init + delta).detach(), init=init, losses=tuple(losses), target_prob=target_prob)


def _logprobs(model, inputs, cache, layer: int, batch: _Batch, n_target: int) -> Float[Tensor, "row target d_vocab"]:
    """Log-probabilities at each row's readout positions (n_target of them; the KL row's first is used)."""
    if n_target == 1:
        logits = run_from(model, inputs, cache, layer=layer, readout=batch.readout)[:, None]
    else:
        full = run_from(model, inputs, cache, layer=layer)
        positions = (batch.readout[:, None] + torch.arange(n_target)).clamp(max=full.shape[1] - 1)
        logits = full[torch.arange(full.shape[0])[:, None], positions.to(full.device)]
    return logits.float().log_softmax(-1)
