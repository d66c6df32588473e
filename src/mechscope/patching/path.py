"""Path patching (Wang et al. 2022): the effect of a sender head on the model's output
through one set of receivers only.

For each sender head s, and receivers R (queries, keys or values of some heads, or the
logits directly):

1. Run the base prompts with s's output taken from the source run and every other
   head's output frozen at its base value; MLPs are recomputed, so paths s → MLPs → R
   count, paths through other heads do not. Record what R receives.
2. Run the base prompts again with only R's inputs replaced by those recorded values,
   and read the metric. (With R = the logits, step 1's own output is the answer.)

::

    # which heads affect the name movers' queries (IOI: S-inhibition heads)?
    movers = [HeadInput(layer=9, head=9, input="q"), HeadInput(layer=10, head=0, input="q")]
    result = path_patching(model, task, receivers=movers)       # layer × head
    direct = path_patching(model, task, receivers="logits")     # direct effects

Noising is the default direction (base = clean prompts, sources = corrupted), as in
Wang et al. Under grouped-query attention a key or value receiver is a key/value head
(``head`` then indexes kv heads), since the query heads of a group share it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.errors import InputError
from mechscope.hooks.replay import record_block_inputs, replay_names, run_from
from mechscope.patching.common import make_result, runs
from mechscope.patching.result import PatchingResult
from mechscope.patching.specs import make_sweep
from mechscope.tasks.task import Task, at_answer

INPUTS = ("q", "k", "v")


@dataclass(frozen=True)
class HeadInput:
    """One input of one attention head."""

    layer: int
    head: int
    """Query head for ``q``; key/value head for ``k`` and ``v``."""
    input: str
    """``q``, ``k`` or ``v``."""
    positions: tuple[int, ...] | None = None
    """Receive only at these positions (Wang et al. patch the name movers' queries at the
    final token: with left-padded tasks that is position n − 1); None: every position."""

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise InputError(f"receiver input must be one of {', '.join(INPUTS)}; received {self.input!r}")

    @property
    def name(self) -> str:
        return f"blocks.{self.layer}.attn.hook_{self.input}"


def path_patching(
    model,
    task: Task,
    *,
    receivers: Sequence[HeadInput] | str = "logits",
    direction: str = "noise",
    layers: Sequence[int] | None = None,
    progress: bool = True,
) -> PatchingResult:
    """Path-patch every sender head in ``layers`` (default: every layer before the first
    receiver) to ``receivers``; the metric after each, laid out layer × head."""
    receivers = _check_receivers(model, receivers)
    layers = _sender_layers(model, receivers, layers)
    base, source = runs(task, direction)
    sweep = make_sweep(model, "heads", n_pos=base.ids.shape[1], layers=layers)
    metric = task.metric_fn(model)
    answer_pos = task.answer_pos.to(model.device)
    z_names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    n_prompts, n_heads = base.ids.shape[0], model.cfg.n_heads
    values = torch.empty(sweep.shape)
    receiver_names = [] if receivers == "logits" else sorted({r.name for r in receivers})
    with torch.no_grad():
        with record_block_inputs(model) as inputs:
            base_logits, base_cache = model.run_with_cache(base, names=replay_names(model) + z_names)
        source_logits, source_cache = model.run_with_cache(source, names=z_names)
        for i, layer in enumerate(tqdm(layers, desc="path patching", disable=not progress, leave=False)):
            # step 1: all heads of this layer as senders at once, one copy of the batch each
            recorded: dict[str, Tensor] = {}
            hooks = [(f"blocks.{layer}.attn.hook_z", _sender_hook(source_cache, layer, n_prompts))]
            hooks += [(name, _freeze_hook(base_cache, name, n_heads)) for name in z_names[layer + 1:]]
            if receivers != "logits":
                hooks += [(name, _record_hook(recorded)) for name in receiver_names]
            logits = run_from(model, inputs, base_cache, layer=layer, copies=n_heads, readout=answer_pos, fwd=hooks)
            if receivers != "logits":
                # step 2: only the receivers see what step 1 sent them
                first = min(r.layer for r in receivers)
                hooks = [(name, _receiver_hook(recorded, receivers, name)) for name in receiver_names]
                logits = run_from(model, inputs, base_cache, layer=first, copies=n_heads, readout=answer_pos, fwd=hooks)
            values[i] = metric(logits).view(n_heads, n_prompts).mean(1).cpu()
        base_value = float(metric(at_answer(base_logits, answer_pos)).mean())
        source_value = float(metric(at_answer(source_logits, answer_pos)).mean())
    result = make_result(model, task, sweep, values, "exact", direction, base_value, source_value)
    target = "logits" if receivers == "logits" else ", ".join(f"L{r.layer}H{r.head}.{r.input}" for r in receivers)
    return dataclasses.replace(result, what=f"path → {target}")


def path_patching_reference(
    model,
    task: Task,
    *,
    receivers: Sequence[HeadInput] | str = "logits",
    direction: str = "noise",
    layers: Sequence[int] | None = None,
) -> PatchingResult:
    """The slow reference: two full forwards per sender head, hooks only."""
    receivers = _check_receivers(model, receivers)
    layers = _sender_layers(model, receivers, layers)
    base, source = runs(task, direction)
    sweep = make_sweep(model, "heads", n_pos=base.ids.shape[1], layers=layers)
    metric = task.metric_fn(model)
    answer_pos = task.answer_pos.to(model.device)
    z_names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    values = torch.empty(sweep.shape)
    with torch.no_grad():
        _, base_cache = model.run_with_cache(base, names=z_names)
        _, source_cache = model.run_with_cache(source, names=z_names)
        for i, layer in enumerate(layers):
            for head in range(model.cfg.n_heads):
                def step1_z(z, hook, layer=layer, head=head):
                    frozen = base_cache[hook.name].clone()
                    if hook.layer == layer:
                        frozen[:, :, head] = source_cache[hook.name][:, :, head]
                    return frozen

                recorded: dict[str, Tensor] = {}
                hooks = [(name, step1_z) for name in z_names]
                if receivers != "logits":
                    hooks += [(r.name, _record_hook(recorded)) for r in receivers]
                logits = model.run_with_hooks(base, fwd=hooks)
                if receivers != "logits":
                    hooks = [(name, _receiver_hook(recorded, receivers, name)) for name in {r.name for r in receivers}]
                    logits = model.run_with_hooks(base, fwd=hooks)
                values[i, head] = float(metric(at_answer(logits, answer_pos)).mean())
        base_value = float(metric(at_answer(model(base), answer_pos)).mean())
        source_value = float(metric(at_answer(model(source), answer_pos)).mean())
    return make_result(model, task, sweep, values, "exact", direction, base_value, source_value)


def _sender_layers(model, receivers, layers: Sequence[int] | None) -> tuple[int, ...]:
    """The sender layers: given ones, checked to lie before every receiver, or all of those."""
    last_sender = model.cfg.n_layers - 1 if receivers == "logits" else min(r.layer for r in receivers) - 1
    if last_sender < 0:
        raise InputError("receivers in layer 0 have no sender heads before them")
    layers = tuple(range(last_sender + 1)) if layers is None else tuple(layers)
    if not layers or any(not 0 <= layer <= last_sender for layer in layers):
        raise InputError(f"sender layers must lie in 0..{last_sender}, before the receivers; received {layers}")
    return layers


def _check_receivers(model, receivers):
    if isinstance(receivers, str):
        if receivers != "logits":
            raise InputError(f"receivers must be 'logits' or a list of HeadInput; received {receivers!r}")
        return receivers
    receivers = tuple(receivers)
    if not receivers:
        raise InputError("give at least one receiver, or receivers='logits'")
    for r in receivers:
        n = model.cfg.n_heads if r.input == "q" else model.cfg.n_kv_heads
        if not (0 <= r.layer < model.cfg.n_layers and 0 <= r.head < n):
            raise InputError(f"receiver {r} is outside the model ({model.cfg.n_layers} layers, {n} {r.input} heads)")
        if r.positions is not None and not r.positions:
            raise InputError(f"receiver {r} has an empty positions tuple; use None for every position")
    return receivers


def _sender_hook(source_cache, layer: int, n_prompts: int):
    """Copy c takes head c's output from the source run (others recompute to base values)."""
    def hook(z: Tensor, point) -> Tensor:
        z = z.clone()
        source = source_cache["z", layer]
        for head in range(z.shape[2]):
            rows = slice(head * n_prompts, (head + 1) * n_prompts)
            z[rows, :, head] = source[:, :, head].to(z)
        return z
    return hook


def _freeze_hook(base_cache, name: str, copies: int):
    def hook(z: Tensor, point) -> Tensor:
        return base_cache[name].repeat(copies, 1, 1, 1).to(z)
    return hook


def _record_hook(recorded: dict[str, Tensor]):
    def hook(tensor: Tensor, point) -> None:
        recorded[point.name] = tensor.clone()
    return hook


def _receiver_hook(recorded: dict[str, Tensor], receivers, name: str):
    """Replace only the receiving heads' inputs (at their positions) by what step 1 recorded."""
    mine = [r for r in receivers if r.name == name]

    def hook(tensor: Tensor, point) -> Tensor:
        tensor = tensor.clone()
        for r in mine:
            positions = slice(None) if r.positions is None else list(r.positions)
            tensor[:, positions, r.head] = recorded[name][:, positions, r.head].to(tensor)
        return tensor
    return hook
