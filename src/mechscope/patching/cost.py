"""What a patching sweep will cost, worked out from shapes before anything runs.

::

    cost = patching_cost(model, task, what="resid")
    cost.describe()   # '73,950 patches: about 18,490 forward passes of 1 prompt × 2,465 tokens
                      #  (45.6 M tokens through the model); peak memory about 3.1 GB'

**Work** is counted in tokens through the whole model: a forward pass of the task's
prompts is ``n_prompts × n_pos`` of them, and a backward pass counts as two. Exact
patching's fast path runs each patch only from the patched layer and the patched position
on (:mod:`mechscope.patching.activation`), so a patch costs that fraction of a pass; AtP
costs two forward passes and one backward whatever the sweep, and GradDrop adds a forward
and a backward pass per layer. Attention's cost grows with the square of the prompt's
length and is not in the count: long prompts cost more per token than it says.

**Memory** is an estimate of the activations held at the peak (weights not included):
for exact patching the cached runs plus the largest batched run; for AtP every layer's
activations kept for the backward pass, the logits and their gradient, and the cached
activations and gradients of the sweep. Attention scores and patterns count only where
the sweep hooks attention internals (q, k, v, z, pattern): only there does mechscope's
eager attention run; elsewhere SDPA keeps no pattern.

Above :data:`CONFIRM_TOKENS` or :data:`CONFIRM_BYTES` the command line asks for
``--yes`` and names a cheaper way (:meth:`SweepCost.cheaper`); the library functions take
``max_tokens`` and refuse with a :class:`~mechscope.errors.CostError` above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from mechscope.errors import CostError
from mechscope.hooks.replay import replay_names
from mechscope.patching.specs import Sweep, make_sweep, plan_runs
from mechscope.tasks.task import Task

CONFIRM_TOKENS = 20_000_000
"""Work above which the command line asks for ``--yes``: about 40 times the default
``mechscope patch`` sweep (every head at every position of 32 IOI prompts)."""
CONFIRM_BYTES = 4 * 2**30
"""Estimated peak memory above which the command line asks for ``--yes``."""
_FLOAT = 4
"""Bytes per activation value (float32; the estimate ignores lower-precision models)."""
ATTENTION_COPIES = 2
"""Query × key tensors per head that eager attention keeps (scores and pattern)."""


@dataclass(frozen=True)
class SweepCost:
    """The estimated cost of one patching sweep (see the module docstring)."""

    method: str
    """``exact``, ``atp`` or ``atp*``."""
    what: str
    """The sweep."""
    patches: int
    """Cells of the sweep: one patched run each for exact patching."""
    n_prompts: int
    """Prompts of the task (rows of one forward pass)."""
    n_pos: int
    """Tokens per prompt (padded)."""
    tokens: int
    """Work, in tokens through the whole model."""
    peak_bytes: int
    """Estimated peak memory of the activations, in bytes."""

    @property
    def forward_passes(self) -> float:
        """The work in forward passes of the task's prompts."""
        return self.tokens / (self.n_prompts * self.n_pos)

    def describe(self) -> str:
        """One line: patches, passes, tokens, memory."""
        return (f"{self.method} {self.what} patching: {self.patches:,} patches, about "
                f"{self.forward_passes:,.0f} forward passes of {self.n_prompts} prompt(s) × {self.n_pos} tokens "
                f"({_count(self.tokens)} tokens through the model); peak memory about {_size(self.peak_bytes)}")

    def cheaper(self) -> str:
        """What to do instead, when this sweep is too expensive."""
        ways = []
        if self.method == "exact":
            ways.append("AtP (method atp) estimates every cell from one backward pass")
        if self.n_pos > 1:
            ways.append("patch fewer positions (positions=, --positions) or layers (layers=, --layers)")
        if self.n_prompts > 1:
            ways.append("use fewer prompts (-n)")
        return "Cheaper: " + "; ".join(ways) + "." if ways else ""

    def over(self, *, max_tokens: int | None = CONFIRM_TOKENS, max_bytes: int | None = CONFIRM_BYTES) -> bool:
        """True if the work or the memory is above the limits given (None: no limit)."""
        return ((max_tokens is not None and self.tokens > max_tokens)
                or (max_bytes is not None and self.peak_bytes > max_bytes))


def patching_cost(model, task: Task, *, method: str = "exact", what: str = "heads_by_pos",
                  layers=None, positions=None, max_rows: int = 512) -> SweepCost:
    """The cost of ``method`` (``exact``, ``atp`` or ``atp*``) on sweep ``what`` of ``task``."""
    sweep = make_sweep(model, what, n_pos=task.clean.ids.shape[1], layers=layers, positions=positions)
    return sweep_cost(model, task, sweep, method, max_rows=max_rows)


def sweep_cost(model, task: Task, sweep: Sweep, method: str, *, max_rows: int = 512) -> SweepCost:
    """:func:`patching_cost` of a sweep already built."""
    n_prompts, n_pos = task.clean.ids.shape
    if method == "exact":
        tokens, peak = _exact(model, sweep, n_prompts, n_pos, int(task.answer_pos.min()), max_rows)
    else:
        tokens, peak = _attribution(model, sweep, n_prompts, n_pos, grad_drop=method.startswith("atp*"))
    return SweepCost(method=method, what=sweep.what, patches=len(sweep.patches), n_prompts=n_prompts,
                     n_pos=n_pos, tokens=int(tokens), peak_bytes=int(peak))


def check_cost(cost: SweepCost, max_tokens: int | None) -> None:
    """Refuse (:class:`CostError`) a sweep whose work is above ``max_tokens``."""
    if max_tokens is not None and cost.tokens > max_tokens:
        raise CostError(f"{cost.describe()}: above the limit of {_count(max_tokens)} tokens. {cost.cheaper()}")


def _exact(model, sweep: Sweep, n_prompts: int, n_pos: int, first_answer: int, max_rows: int) -> tuple[float, float]:
    """Tokens and peak bytes of the fast path (its plan: :func:`~mechscope.patching.specs.plan_runs`)."""
    cfg = model.cfg
    eager = _attention_layers(sweep)
    tokens = 2.0 * n_prompts * n_pos  # the source and base runs
    transient = 0.0
    for layer, start, chunk in plan_runs(sweep, first_answer, max(1, max_rows // n_prompts)):
        tokens += len(chunk) * n_prompts * (n_pos - start) * (cfg.n_layers - layer) / cfg.n_layers
        rows = len(chunk) * n_prompts
        prefix = rows * start * 2 * cfg.n_kv_heads * cfg.d_head * (cfg.n_layers - layer) * _FLOAT  # earlier keys, values
        transient = max(transient, prefix + _block_bytes(cfg, rows, n_pos - start, n_pos, eager=layer in eager))
    patched = {p.name for p in sweep.patches}
    cached = len(replay_names(model)) + 2 * len(patched)  # base run: replay points and patched points; source run
    per_name = max(_width(model, name, n_pos) for name in patched)
    return tokens, transient + cached * n_prompts * n_pos * max(per_name, cfg.d_model) * _FLOAT


def _attribution(model, sweep: Sweep, n_prompts: int, n_pos: int, *, grad_drop: bool) -> tuple[float, float]:
    cfg = model.cfg
    passes = 2 + 2  # source and base forward, one backward
    if grad_drop:
        passes += 3 * cfg.n_layers  # a forward and a backward per dropped layer
    eager = _attention_layers(sweep)
    kept = sum(_block_bytes(cfg, n_prompts, n_pos, n_pos, eager=layer in eager) for layer in range(cfg.n_layers))
    logits = 3 * n_prompts * n_pos * cfg.d_vocab * _FLOAT  # logits, their log-softmax, its gradient
    patched = {p.name for p in sweep.patches}
    cached = 3 * sum(_width(model, name, n_pos) for name in patched) * n_prompts * n_pos * _FLOAT  # source, base, grad
    return passes * n_prompts * n_pos, kept + logits + cached


def _attention_layers(sweep: Sweep) -> set[int]:
    """Layers where the sweep hooks attention internals: there mechscope's eager attention
    runs and keeps scores and pattern; elsewhere SDPA keeps no pattern."""
    return {p.layer for p in sweep.patches if ".attn." in p.name}


def _block_bytes(cfg, rows: int, queries: int, keys: int, *, eager: bool) -> float:
    """Activations one block keeps for ``rows`` × ``queries`` positions: about 8 residual-wide
    and 4 MLP-wide values per position (AtP of a 2,352-token prompt on smollm2-135m raised
    the peak RSS by 4.46 GB; this count gives 4.9), and with eager attention its scores and
    pattern."""
    per_position = 8 * cfg.d_model + 4 * cfg.d_mlp + (ATTENTION_COPIES * cfg.n_heads * keys if eager else 0)
    return rows * queries * per_position * _FLOAT


def _width(model, name: str, n_pos: int) -> int:
    """Values per (prompt, position) of hook point ``name``."""
    cfg = model.cfg
    sizes = {"head": cfg.n_heads, "kv_head": cfg.n_kv_heads, "d_head": cfg.d_head, "d_model": cfg.d_model,
             "d_mlp": cfg.d_mlp, "d_vocab": cfg.d_vocab, "key_pos": n_pos}
    dims = model.hook_point(name).dims
    return prod(sizes.get(d, 1) for d in dims if d not in ("batch", "pos", "query_pos"))


def _count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f}"


def _size(n: float) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 2**10:.0f} KB"
