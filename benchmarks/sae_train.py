"""TopK SAE training throughput and peak memory: mechscope against SAELens, one script.

    python benchmarks/sae_train.py            # d_in 576, d_sae 4608, k 32, batch 4096, 3 + 12 steps a side
    python benchmarks/sae_train.py --quick    # the same shapes, 1 + 3 steps a side: under a minute

Both sides train a TopK SAE of the same width and k, with the same batch size, Adam
at the same constant learning rate, float32, on the same activations: a pool of
seeded Gaussian batches, built identically in each side's process and cycled (random
activations cost about the same per step as harvested ones; no model has to run), or
the first batches of a harvested store with ``--store DIR``. mechscope
uses ``train_sae``; SAELens its own ``SAETrainer.fit`` with ``TopKTrainingSAE`` and its
defaults (decoder-norm rescaling, AuxK loss, gradient clipping), logging off. The SAELens
side is skipped with a message when ``sae_lens`` is not importable.

Timing: the data iterator stamps the clock each time a step asks for its batch, so a
step's time is the gap between consecutive stamps (the last one ends when training
returns); the first ``warmup`` steps are dropped and the median of the rest gives
tokens/s = batch / median step time.

Memory: each side runs in its own child process (multiprocessing, spawn), so neither
sees the other's allocations. Peak memory is the child's peak resident set size
(``ru_maxrss``) at the end; the table also gives the rise over the peak measured just
before training starts (after imports and building the activation pool), i.e. what
training itself added.

Writes ``benchmarks/results/sae_train[_store][_quick].json``. Target: mechscope >= 1.5x SAELens' tokens/s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import time
import warnings
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
TARGET = 1.5
POOL_BATCHES = 4


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _pool(args):
    import torch

    if args.get("store"):
        return _store_pool(args)
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(args["batch"], args["d_in"], generator=gen) for _ in range(POOL_BATCHES)]


def _store_pool(args):
    """The first ``POOL_BATCHES`` batches of a harvested store's first point, as float32.

    Read with safetensors alone, so that both sides load identical tensors the same way."""
    import torch
    from safetensors import safe_open

    root = Path(args["store"])
    manifest = json.loads((root / "manifest.json").read_text())
    name = manifest["hooks"][0]["name"]
    parts, have = [], 0
    for shard in manifest["shards"]:
        with safe_open(str(root / shard["file"]), framework="pt") as reader:
            parts.append(reader.get_tensor(name).float())
        have += len(parts[-1])
        if have >= POOL_BATCHES * args["batch"]:
            break
    acts = torch.cat(parts)
    if len(acts) < POOL_BATCHES * args["batch"] or acts.shape[1] != args["d_in"]:
        raise SystemExit(f"{root} needs {POOL_BATCHES * args['batch']} tokens of width {args['d_in']} "
                         f"(--d-in); it has {len(acts)} of width {acts.shape[1]}")
    return list(acts[: POOL_BATCHES * args["batch"]].split(args["batch"]))


def _stamped(pool, stamps):
    """Batches from ``pool`` forever, stamping the clock as each is handed out."""
    i = 0
    while True:
        stamps.append(time.perf_counter())
        yield pool[i % len(pool)]
        i += 1


def _run_mechscope(args) -> dict:
    import torch

    from mechscope.sae import SAEConfig
    from mechscope.sae.train import TrainConfig, train_sae

    torch.set_num_threads(args["threads"])
    pool, stamps = _pool(args), []

    class PoolSource:  # the ActivationSource protocol over the pool
        d_in = args["d_in"]

        def batches(self, batch_size, *, seed=0, start=0):
            return _stamped(pool, stamps)

    base = _peak_rss_mib()
    cfg = SAEConfig(d_in=args["d_in"], d_sae=args["d_sae"], architecture="topk", k=args["k"])
    config = TrainConfig(total_steps=args["steps"], batch_size=args["batch"], lr=args["lr"], lr_decay_fraction=0.0,
                         normalize_activations=False, b_dec_init="zeros")
    result = train_sae(cfg, PoolSource(), config, progress=False)
    stamps.append(time.perf_counter())
    return _summary(args, stamps, base, float(result.history.mse[-1]))


def _run_saelens(args) -> dict:
    os.environ.setdefault("WANDB_MODE", "disabled")
    import torch
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.set_num_threads(args["threads"])
    pool, stamps = _pool(args), []
    base = _peak_rss_mib()
    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(
        d_in=args["d_in"], d_sae=args["d_sae"], k=args["k"], dtype="float32", device="cpu",
        normalize_activations="none", use_sparse_activations=args["saelens_sparse"],
    ))
    steps = args["steps"]
    trainer = SAETrainer(
        cfg=SAETrainerConfig(
            total_training_samples=steps * args["batch"], train_batch_size_samples=args["batch"], lr=args["lr"],
            lr_end=args["lr"], lr_scheduler_name="constant", device="cpu", autocast=False, n_checkpoints=0,
            checkpoint_path=None, save_final_checkpoint=False, logger=LoggingConfig(log_to_wandb=False),
        ),
        sae=sae, data_provider=_stamped(pool, stamps),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit()
    stamps.append(time.perf_counter())
    with torch.no_grad():
        x = pool[(steps - 1) % len(pool)]
        mse = float((trainer.sae(x) - x).pow(2).sum(-1).mean())  # after the last step (ours: before it)
    return _summary(args, stamps, base, mse)


def _summary(args, stamps, base_mib, final_mse) -> dict:
    step_s = [b - a for a, b in zip(stamps, stamps[1:])][: args["steps"]]
    measured = step_s[args["warmup"]:]
    median = statistics.median(measured)
    return {
        "step_seconds": [round(s, 4) for s in step_s],
        "median_step_seconds": round(median, 4),
        "tokens_per_second": round(args["batch"] / median),
        "peak_rss_mib": round(_peak_rss_mib()),
        "peak_rss_rise_mib": round(_peak_rss_mib() - base_mib),
        "final_mse": round(final_mse, 3),
    }


def _child(side: str, args: dict, queue) -> None:
    try:
        queue.put(("ok", (_run_mechscope if side == "mechscope" else _run_saelens)(args)))
    except Exception as error:  # reported by the parent, which keeps going
        queue.put(("error", f"{type(error).__name__}: {error}"))


def _in_child(side: str, args: dict) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(side, args, queue))
    proc.start()
    status, payload = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"{side} side failed: {payload}")
    return payload


def _saelens_version() -> str | None:
    try:
        from importlib.metadata import version

        import sae_lens  # noqa: F401
    except ImportError:
        return None
    return version("sae-lens")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 warm-up + 3 measured steps a side (under a minute)")
    parser.add_argument("--d-in", type=int, default=576)
    parser.add_argument("--d-sae", type=int, default=4608)
    parser.add_argument("-k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, help="measured steps a side (default 12; --quick 3)")
    parser.add_argument("--warmup", type=int, help="steps dropped before measuring (default 3; --quick 1)")
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 16))
    parser.add_argument("--saelens-sparse", action="store_true",
                        help="SAELens' use_sparse_activations=True (sparse decoder) instead of its default")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--store", help="a harvested store (mechscope sae harvest) to take the activations from "
                                        "instead of Gaussian batches")
    a = parser.parse_args()
    warmup = a.warmup if a.warmup is not None else (1 if a.quick else 3)
    measured = a.steps if a.steps is not None else (3 if a.quick else 12)
    args = {"d_in": a.d_in, "d_sae": a.d_sae, "k": a.k, "batch": a.batch, "warmup": warmup,
            "steps": warmup + measured, "threads": a.threads, "lr": a.lr, "saelens_sparse": a.saelens_sparse,
            "store": a.store}
    print(f"TopK SAE d_in={a.d_in} d_sae={a.d_sae} k={a.k} batch={a.batch}: {warmup} warm-up + {measured} measured "
          f"steps a side, {a.threads} threads")
    sides = {"mechscope": _in_child("mechscope", args)}
    saelens = _saelens_version()
    if saelens is None:
        print("sae_lens is not importable here: SAELens side skipped (pip install sae-lens beside mechscope)")
    else:
        sides["saelens"] = _in_child("saelens", args)
    print(f"{'side':>10} {'tokens/s':>10} {'step s':>8} {'peak RSS MiB':>13} {'rise MiB':>9} {'final mse':>10}")
    for name, side in sides.items():
        print(f"{name:>10} {side['tokens_per_second']:>10,} {side['median_step_seconds']:>8.3f} "
              f"{side['peak_rss_mib']:>13,} {side['peak_rss_rise_mib']:>9,} {side['final_mse']:>10.3f}")
    report = {"quick": a.quick, "shapes": args, "sae_lens_version": saelens, "sides": sides, "target_ratio": TARGET,
              "machine": platform.machine(), "cpu_count": os.cpu_count(), "python": platform.python_version()}
    if "saelens" in sides:
        ratio = sides["mechscope"]["tokens_per_second"] / sides["saelens"]["tokens_per_second"]
        memory = sides["mechscope"]["peak_rss_rise_mib"] / max(sides["saelens"]["peak_rss_rise_mib"], 1)
        report.update(throughput_ratio=round(ratio, 2), memory_rise_ratio=round(memory, 2))
        print(f"throughput: mechscope / SAELens = {ratio:.2f}x (target >= {TARGET}x: {'PASS' if ratio >= TARGET else 'FAIL'}); "
              f"training memory rise: {memory:.2f}x SAELens'")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"sae_train{'_store' if a.store else ''}{'_quick' if a.quick else ''}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
