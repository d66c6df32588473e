"""Sparse dictionaries: sparse autoencoders and transcoders over a model's activations.

One module per step: :mod:`~mechscope.sae.harvest` (activations to disk),
:mod:`~mechscope.sae.store` (reading them), :mod:`~mechscope.sae.buffer` (on the fly),
:mod:`~mechscope.sae.train`, :mod:`~mechscope.sae.evaluate`, :mod:`~mechscope.sae.saelens`
(save and load), :mod:`~mechscope.sae.dashboard`, :mod:`~mechscope.sae.splice`,
:mod:`~mechscope.sae.steering` and :mod:`~mechscope.sae.attribution`.
"""

from mechscope.sae.attribution import FeatureAttribution, exact_feature_ablation, feature_attribution
from mechscope.sae.config import ARCHITECTURES, SAEConfig
from mechscope.sae.dashboard import FeatureDashboards, feature_dashboard
from mechscope.sae.evaluate import SAEEvaluation, evaluate_sae
from mechscope.sae.harvest import harvest
from mechscope.sae.model import SAEOutput, SparseAutoencoder
from mechscope.sae.saelens import load_sae, save_sae
from mechscope.sae.splice import spliced
from mechscope.sae.steering import generate, steer
from mechscope.sae.store import ActivationStore
from mechscope.sae.train import TrainConfig, TrainResult, train_sae

__all__ = [
    "ARCHITECTURES", "ActivationStore", "FeatureAttribution", "FeatureDashboards", "SAEConfig", "SAEEvaluation",
    "SAEOutput", "SparseAutoencoder", "TrainConfig", "TrainResult", "evaluate_sae", "exact_feature_ablation",
    "feature_attribution", "feature_dashboard", "generate", "harvest", "load_sae", "save_sae", "spliced", "steer",
    "train_sae",
]
