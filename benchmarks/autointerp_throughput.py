"""Units explained and scored per minute: the local backend batched vs one request at a time,
and the HTTP backend against mechscope's own OpenAI-compatible server at 1, 4 and 16
requests in flight.

    python benchmarks/autointerp_throughput.py --records sae-runs/ground-truth/quick
    python benchmarks/autointerp_throughput.py --records DIR --units 8 --quick

Each side explains (default explainer) and scores (detection, with its two controls) the
same units from the same records, in one process, one after another. The server runs in
a child process (``serve_openai`` below: uvicorn, the route of
:mod:`mechscope.app.openai_api`, batching concurrent requests) on 127.0.0.1. Writes
``benchmarks/results/autointerp_throughput.json``. Wall-clock numbers on a shared machine
are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", required=True, help="a directory holding records/ (any units)")
    parser.add_argument("--backend-model", default="smollm2-135m")
    parser.add_argument("--units", type=int, default=8)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2 units, concurrency 1 and 4")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)  # child: serve on this port
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    if a.serve is not None:
        return serve_openai(a.backend_model, a.serve)

    from mechscope.autointerp import load_all
    from mechscope.autointerp.backends.http import HTTPBackend
    from mechscope.autointerp.backends.local import LocalBackend
    from mechscope.models import load_model

    n_units = 2 if a.quick else a.units
    levels = [c for c in a.concurrency if c <= 4] if a.quick else a.concurrency
    records = load_all(a.records)[:n_units]
    model = load_model(a.backend_model)
    out = {"backend_model": a.backend_model, "units": len(records), "threads": a.threads, "sides": {}}
    for label, batch in (("local, batched (8)", 8), ("local, one at a time", 1)):
        out["sides"][label] = _measure(records, LocalBackend(model, batch_size=batch))
        _print(label, out["sides"][label])
    del model
    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--records", a.records, "--backend-model", a.backend_model,
                               "--threads", str(a.threads), "--serve", str(port)])
    try:
        _wait_for(port)
        for level in levels:
            label = f"http, {level} in flight"
            backend = HTTPBackend(f"http://127.0.0.1:{port}/v1", model=a.backend_model, concurrency=level,
                                  timeout=600)
            out["sides"][label] = _measure(records, backend)
            _print(label, out["sides"][label])
    finally:
        server.terminate()
        server.wait(30)
    base = out["sides"]["local, one at a time"]["units_per_minute"]
    for side in out["sides"].values():
        side["speedup_vs_local_one_at_a_time"] = side["units_per_minute"] / base
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"autointerp_throughput{'_quick' if a.quick else ''}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


def _measure(records, backend) -> dict:
    from mechscope.autointerp import explain_units, score_units

    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        texts = explain_units(records, backend=backend, out_dir=work, batch=len(records))
        explained = time.perf_counter() - started
        score_units(records, texts, scorers=["detection"], backend=backend, out_dir=work, batch=len(records))
        total = time.perf_counter() - started
    return {"explain_seconds": explained, "score_seconds": total - explained, "total_seconds": total,
            "units_per_minute": 60 * len(records) / total}


def _print(label: str, side: dict) -> None:
    print(f"{label:24s} explain {side['explain_seconds']:7.1f} s, score {side['score_seconds']:7.1f} s: "
          f"{side['units_per_minute']:.2f} units/min")


def serve_openai(model_name: str, port: int) -> int:
    """The child process: mechscope's OpenAI-compatible route over ``model_name``."""
    import uvicorn
    from fastapi import FastAPI

    from mechscope.app.openai_api import openai_router
    from mechscope.models import load_model

    app = FastAPI()
    app.include_router(openai_router(load_model(model_name), served_name=model_name, max_batch=16))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, seconds: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    raise RuntimeError(f"the server on port {port} did not start within {seconds} s")


if __name__ == "__main__":
    raise SystemExit(main())
