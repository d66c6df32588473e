"""SAELens ↔ mechscope, both directions, with SAELens itself (run where sae-lens is installed).

    python benchmarks/saelens_interop.py                     # random SAEs of every shared architecture
    python benchmarks/saelens_interop.py --sae sae-runs/smollm2-l15/sae   # also a trained one

For each architecture: mechscope saves → ``sae_lens.SAE.load_from_disk`` loads, and a
SAELens SAE's ``save_model`` → ``mechscope.sae.load_sae`` loads; the two sides encode and
decode the same activations and the largest differences are printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path

import torch


def _max_diff(ours, theirs, x) -> tuple[float, float]:
    with torch.no_grad():
        out = ours(x)
        latents = theirs.encode(x)
        recon = theirs.decode(latents)
        if getattr(theirs.cfg, "architecture", lambda: "")() in ("skip_transcoder", "jumprelu_skip_transcoder"):
            recon = theirs(x)
    return float((out.latents - latents).abs().max()), float((out.output - recon).abs().max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sae", help="a saved SAE directory to check as well")
    a = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    warnings.simplefilter("ignore")
    from sae_lens import SAE

    from mechscope.sae import SAEConfig, SparseAutoencoder, load_sae, save_sae

    torch.manual_seed(0)
    d_in, d_sae, d_out = 32, 96, 24
    cases = {f"{arch}{'-transcoder' if tc else ''}": SAEConfig(
        d_in=d_in, d_sae=d_sae, architecture=arch, k=8 if "topk" in arch else None, d_out=d_out if tc else None,
        skip=tc) for arch in ("relu", "topk", "batchtopk", "jumprelu") for tc in (False, True)
        if not (tc and arch in ("batchtopk", "topk"))}
    root = Path(tempfile.mkdtemp())
    print(f"{'case':<22} {'direction':<20} {'max |Δ latents|':>16} {'max |Δ output|':>15}")
    worst = 0.0
    for name, cfg in cases.items():
        sae = SparseAutoencoder(cfg)
        with torch.no_grad():
            for p in sae.parameters():
                p.add_(torch.randn_like(p) * 0.05)
            sae.input_scale.fill_(0.7)
            if cfg.architecture == "batchtopk":
                sae.threshold.fill_(0.1)
        sae.eval()
        save_sae(sae, root / name)
        theirs = SAE.load_from_disk(str(root / name), device="cpu")
        x = torch.randn(64, d_in) * 2
        dl, do = _max_diff(sae, theirs, x)  # the original: its input scale 0.7 is folded in the file
        print(f"{name:<22} {'mechscope → SAELens':<20} {dl:>16.2e} {do:>15.2e}")
        theirs.save_model(str(root / f"{name}-back"))
        dl2, do2 = _max_diff(load_sae(root / f"{name}-back"), theirs, x)
        print(f"{name:<22} {'SAELens → mechscope':<20} {dl2:>16.2e} {do2:>15.2e}")
        worst = max(worst, dl, do, dl2, do2)
    if a.sae:
        ours = load_sae(a.sae)
        theirs = SAE.load_from_disk(a.sae, device="cpu")
        x = torch.randn(256, ours.cfg.d_in) * 10
        dl, do = _max_diff(ours, theirs, x)
        print(f"{Path(a.sae).name:<22} {'trained, loaded both':<20} {dl:>16.2e} {do:>15.2e}")
        worst = max(worst, dl, do)
    print(f"largest difference: {worst:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
