"""Options of causal tracing, and the states it restores.

Meng et al. (2022) corrupt the subject's token embeddings with Gaussian noise, then
restore one clean state at a time: a layer's output (``hidden``), or the MLP or
attention outputs of a window of layers around it (``mlp``, ``attn``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mechscope.errors import InputError


@dataclass(frozen=True)
class TraceKind:
    """A state causal tracing restores."""

    hook: str
    """The hook kind restored (``hook_resid_post``, ``hook_mlp_out``, ``hook_attn_out``)."""
    windowed: bool
    """Restore a window of layers around the traced one (MLP and attention), not one layer."""


KINDS: dict[str, TraceKind] = {
    "hidden": TraceKind("hook_resid_post", windowed=False),
    "mlp": TraceKind("hook_mlp_out", windowed=True),
    "attn": TraceKind("hook_attn_out", windowed=True),
}
"""The restorable states by name, as the paper's three heatmaps."""


def _all_tokens(subject: range, n_pos: int) -> range:
    return range(n_pos)


def _last_subject_token(subject: range, n_pos: int) -> range:
    return range(subject.stop - 1, subject.stop)


TOKEN_SETS = {"all": _all_tokens, "last-subject": _last_subject_token}
"""Which tokens to restore: every one, or only the subject's last (a tenth of the work, what
choosing ROME's layer needs); cells left out are NaN."""


@dataclass(frozen=True, kw_only=True)
class TraceConfig:
    """How to corrupt and what to restore."""

    noise: float = 3.0
    """Noise standard deviation, in multiples of the embedding standard deviation (the paper's 3)."""
    noise_std: float | None = None
    """An absolute noise standard deviation instead; None measures the embedding standard
    deviation over the subject tokens of the facts traced (as the paper does) and multiplies it by ``noise``."""
    samples: int = 10
    """Noised copies of the prompt, averaged over (the paper's 10)."""
    window: int = 10
    """Layers restored together for ``mlp`` and ``attn``: from ``l - window//2``, ``window``
    layers (fewer at the ends), as the paper's code does."""
    kinds: tuple[str, ...] = ("hidden", "mlp", "attn")
    """Which states to restore (keys of :data:`KINDS`)."""
    tokens: str = "all"
    """Which tokens to restore (a key of :data:`TOKEN_SETS`)."""
    seed: int = 1
    """Seeds the noise; every cell of one trace sees the same noise samples."""
    max_rows: int = 512
    """Most sequences in one batched run of the fast path (restored tokens × samples)."""

    def __post_init__(self) -> None:
        for name, least in (("samples", 1), ("window", 1), ("max_rows", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InputError(f"TraceConfig.{name} must be an integer of at least {least}; received {value!r}")
        if not isinstance(self.noise, (int, float)) or self.noise < 0:
            raise InputError(f"TraceConfig.noise must be a non-negative number; received {self.noise!r}")
        if self.noise_std is not None and (not isinstance(self.noise_std, (int, float)) or self.noise_std < 0):
            raise InputError(f"TraceConfig.noise_std must be a non-negative number or None; received {self.noise_std!r}")
        if self.tokens not in TOKEN_SETS:
            raise InputError(f"TraceConfig.tokens must be one of {', '.join(TOKEN_SETS)}; received {self.tokens!r}")
        unknown = [kind for kind in self.kinds if kind not in KINDS]
        if unknown or not self.kinds:
            raise InputError(f"TraceConfig.kinds must be some of {', '.join(KINDS)}; received {self.kinds!r}")

    def layers_of(self, kind: str, layer: int, n_layers: int) -> range:
        """The layers restored together when tracing ``kind`` at ``layer``."""
        if not KINDS[kind].windowed:
            return range(layer, layer + 1)
        return range(max(0, layer - self.window // 2), min(n_layers, layer - (-self.window // 2)))
