"""Activations, read from a model and kept: the data that SAEs, probes, steering and
feature explanation all start from.

::

    from mechscope.activations import harvest, ActivationStore, MixingBuffer

    store = harvest(model, "blocks.15.hook_resid_post", texts, "acts/", n_tokens=1_000_000)
    for x in ActivationStore.open("acts/").batches(4096, seed=0):   # shuffled, from disk
        ...
    for x in MixingBuffer(model, "blocks.15.hook_resid_post", texts).batches(4096):   # on the fly
        ...

Modules: :mod:`~.collect` (reading hook points during a forward pass, which tokens to
keep), :mod:`~.manifest` (what a store records about itself), :mod:`~.harvest` (writing
a store, resumably), :mod:`~.store` (reading it), :mod:`~.buffer` (on the fly, no disk),
:mod:`~.source` (the protocol all of them serve batches through).
"""

from mechscope.activations.buffer import MixingBuffer
from mechscope.activations.collect import collect, keep_mask
from mechscope.activations.harvest import harvest
from mechscope.activations.manifest import HarvestSettings, ModelIdentity, StoreMismatchError
from mechscope.activations.source import ActivationSource, TensorSource
from mechscope.activations.store import ActivationStore

__all__ = ["ActivationSource", "ActivationStore", "HarvestSettings", "MixingBuffer", "ModelIdentity",
           "StoreMismatchError", "TensorSource", "collect", "harvest", "keep_mask"]
