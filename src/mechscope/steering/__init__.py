"""Steering: add a direction to the residual stream while the model runs, and find out
where and how hard that works, against random directions of the same size.

::

    from mechscope.steering import (make_pairs, make_vector, steer, generate, steering_sweep,
                                    target_words, NeutralText, SweepConfig)

    pairs = make_pairs("weddings", model)                                  # or a .jsonl/.csv of pairs
    vector = make_vector(model, pairs, method="mean-diff", layers=[12])    # actadd, pca-diff, probe, sae
    with steer(model, vector, alpha=4.0):
        generate(model, "I went up to my friend and said", max_new_tokens=20)
    vector.save("weddings.safetensors"); export_gguf(vector, "weddings.gguf")

Modules: :mod:`~.pairs` (contrastive data), :mod:`~.sources` (vector methods, SAE latents,
given directions), :mod:`~.vector` (the vector and its record; save, load, checks),
:mod:`~.apply` (steering during a forward pass or generation), :mod:`~.generate`
(cached generation and its uncached reference), :mod:`~.measure` (effects and costs),
:mod:`~.sweep` (layer × strength grids, recommendation), :mod:`~.behaviours` (what each
built-in pair set should change), :mod:`~.gguf` (llama.cpp).
"""

from mechscope.steering.apply import DEFAULT_ALPHA, default_layer, steer
from mechscope.steering.behaviours import BEHAVIOUR_EFFECTS, default_effect
from mechscope.steering.generate import SteeredText, generate, generate_uncached, steered_text
from mechscope.steering.gguf import export_gguf, import_gguf
from mechscope.steering.measure import Effect, NeutralText, target_words, task_effect
from mechscope.steering.pairs import PAIRS, ContrastPairs, load_pairs, make_pairs
from mechscope.steering.sources import (VECTOR_SOURCES, make_vector, vector_from_direction, vector_from_sae)
from mechscope.steering.sweep import SteeringSweep, SweepChoice, SweepConfig, default_sweep_layers, steering_sweep
from mechscope.steering.vector import SteeringVector, VectorMismatchError, random_like

__all__ = [
    "BEHAVIOUR_EFFECTS", "DEFAULT_ALPHA", "default_layer", "default_sweep_layers", "PAIRS", "VECTOR_SOURCES", "SteeredText", "default_effect", "steered_text", "ContrastPairs", "Effect", "NeutralText", "SteeringSweep", "SteeringVector",
    "SweepChoice", "SweepConfig", "VectorMismatchError", "export_gguf", "generate", "generate_uncached",
    "import_gguf", "load_pairs", "make_pairs", "make_vector", "random_like", "steer", "steering_sweep",
    "target_words", "task_effect", "vector_from_direction", "vector_from_sae",
]
