"""Sparse dictionaries: sparse autoencoders and transcoders over a model's activations.

Activations come from :mod:`mechscope.activations` (a harvested store on disk, or a mixing
buffer on the fly). One module per step: :mod:`~mechscope.sae.train`, :mod:`~mechscope.sae.evaluate`, :mod:`~mechscope.sae.saelens`
(save and load), :mod:`~mechscope.sae.dashboard`, :mod:`~mechscope.sae.splice` and
:mod:`~mechscope.sae.attribution`. Steering along a latent is one vector source
of :mod:`mechscope.steering` (``vector_from_sae``).
"""

from mechscope.sae.attribution import FeatureAttribution, exact_feature_ablation, feature_attribution
from mechscope.sae.config import ARCHITECTURES, SAEConfig
from mechscope.sae.dashboard import FeatureDashboards, feature_dashboard
from mechscope.sae.evaluate import SAEEvaluation, evaluate_sae
from mechscope.sae.model import SAEOutput, SparseAutoencoder
from mechscope.sae.saelens import load_sae, save_sae
from mechscope.sae.splice import spliced
from mechscope.sae.train import TrainConfig, TrainResult, train_sae

__all__ = [
    "ARCHITECTURES", "FeatureAttribution", "FeatureDashboards", "SAEConfig", "SAEEvaluation",
    "SAEOutput", "SparseAutoencoder", "TrainConfig", "TrainResult", "evaluate_sae", "exact_feature_ablation",
    "feature_attribution", "feature_dashboard", "load_sae", "save_sae", "spliced", "train_sae",
]
