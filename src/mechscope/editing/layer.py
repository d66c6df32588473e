"""Which layer to edit: where causal tracing finds the MLPs that carry facts.

::

    choose_edit_layer(model)        # e.g. 4: peak MLP effect at the last subject token

ROME edits the layer whose MLP (restored with its window, as in the paper's traces) has
the largest average indirect effect at the subject's last token. Users of the papers'
code must guess it (rome #27); here it is measured: the built-in facts the model knows
are traced at their subject's last token (``n_facts`` of them, seeded), and the choice is cached per model (by weight
hash) under the mechscope cache directory with the numbers behind it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from mechscope.errors import InputError
from mechscope.models.cache import cache_root
from mechscope.models.identity import weights_hash
from mechscope.results import write_json


@dataclass(frozen=True)
class LayerChoice:
    """The chosen layer and the trace behind it."""

    layer: int
    """Peak of the average MLP indirect effect at the last subject token."""
    effects: tuple[float, ...]
    """That effect per layer."""
    n_facts: int
    """How many facts were traced."""


def resolve_layer(model, layer: int | None) -> int:
    """``layer`` checked against the model, or the traced choice when None."""
    if layer is None:
        return choose_edit_layer(model).layer
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < model.cfg.n_layers:
        raise InputError(f"layer must be in 0..{model.cfg.n_layers - 1} for {model.name}; received {layer!r}")
    return layer


def choose_edit_layer(model, *, n_facts: int = 16, seed: int = 0, progress: bool = True) -> LayerChoice:
    """Trace known built-in facts' MLPs and take the peak at the last subject token (cached)."""
    from mechscope.facts.dataset import known_facts
    from mechscope.tracing.average import average_trace
    from mechscope.tracing.config import TraceConfig
    from mechscope.tracing.result import BUCKETS

    path = cache_root() / "edit-layers" / f"{weights_hash(model)}-{n_facts}-{seed}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        return LayerChoice(layer=data["layer"], effects=tuple(data["effects"]), n_facts=data["n_facts"])
    known = list(known_facts(model).facts)
    if not known:
        raise InputError(f"{model.name} knows none of the built-in facts, so no layer can be traced; pass a layer")
    random.Random(seed).shuffle(known)
    config = TraceConfig(kinds=("mlp",), tokens="last-subject")  # only what the choice needs
    average = average_trace(model, known[:n_facts], config=config, progress=progress, keep_traces=False)
    layer, _ = average.peak("mlp", "last subject token")
    effects = tuple(float(x) for x in average.effects[0, BUCKETS.index("last subject token")])
    write_json(path, {"layer": layer, "effects": list(effects), "n_facts": average.n_facts})
    return LayerChoice(layer=layer, effects=effects, n_facts=average.n_facts)
