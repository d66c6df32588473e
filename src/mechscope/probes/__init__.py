"""Probing: is a property linearly readable from activations, more than a probe's own
capacity explains, and does the direction it finds change the behaviour?

::

    from mechscope.probes import make_probe_data, probe, probe_layers, sparse_probing, probe_intervention

    data = make_probe_data("sva-number", model, n=512)          # or a .jsonl/.csv file
    sweep = probe_layers(model, data)                           # every layer, with controls
    sweep.plot().savefig("sva_probes.png")
    result = probe(model, data, hook_name="blocks.18.hook_resid_post", k=5)   # a sparse probe

Modules: :mod:`~.data` (examples, files, splits), :mod:`~.datasets` (seeded generators),
:mod:`~.fit` (logistic and ridge in torch), :mod:`~.controls` (control task, shuffled
labels, chance), :mod:`~.probe` (one point, a layer sweep), :mod:`~.sparse` (SAEBench's
sparse-probing table), :mod:`~.intervene` (the direction edited, against random ones).
"""

from mechscope.probes.data import ProbeData, Split, load_probe_data, split_examples
from mechscope.probes.datasets import DATASETS, make_probe_data
from mechscope.probes.fit import PROBE_KINDS, LinearProbe, ProbeConfig, fit_probe
from mechscope.probes.intervene import INTERVENTIONS, ProbeIntervention, probe_intervention
from mechscope.probes.probe import ProbeResult, ProbeSweep, probe, probe_features, probe_layers, top_features
from mechscope.probes.sparse import SparseProbing, SparseProbingRow, sparse_probing

__all__ = [
    "DATASETS", "INTERVENTIONS", "PROBE_KINDS", "LinearProbe", "ProbeConfig", "ProbeData", "ProbeIntervention",
    "ProbeResult", "ProbeSweep", "SparseProbing", "SparseProbingRow", "Split", "fit_probe", "load_probe_data",
    "make_probe_data", "probe", "probe_features", "probe_intervention", "probe_layers", "sparse_probing",
    "split_examples", "top_features",
]
