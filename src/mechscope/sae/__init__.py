"""Sparse dictionaries: sparse autoencoders and transcoders over a model's activations."""

from mechscope.sae.config import ARCHITECTURES, SAEConfig
from mechscope.sae.model import SAEOutput, SparseAutoencoder

__all__ = ["ARCHITECTURES", "SAEConfig", "SAEOutput", "SparseAutoencoder"]
