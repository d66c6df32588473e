"""The web app's speed: a stored investigation's Run page (served, then rendered in headless
Chromium), and the attention grid of smollm2-135m (30 layers × 9 heads) on a 32-token prompt,
whose patterns load a layer at a time as the rows scroll into view.

    python benchmarks/app.py                          # smollm2-135m; builds a stored investigation if needed
    python benchmarks/app.py --store results.db       # an existing store's newest investigation
    python benchmarks/app.py --quick                  # a tiny random model, a few repetitions

Targets (issue 12): the Run page served in <= 200 ms and rendered in <= 1 s. Without
``--store``, an investigation of smollm2-135m IOI is recorded first into
``--build PATH`` (default /tmp/mechscope-app-bench.db) with cheap options (4 prompt pairs, one
IG step, two circuit prompts): the graph and its stored edge scores have their full size
(70,651 edges), which is what the page's cost depends on; the numbers in it are not
meant to be read. Writes ``benchmarks/results/app[_quick].json``. Times measured while other
processes share the cores are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PROMPT_32 = ("When Mary and John went to the store, John gave a drink to Mary. Afterwards, Tom and Alice "
             "walked to the park, and Tom handed a book to")


def build_store(path: Path, model, task: str, quick: bool) -> str:
    """Record one investigation (cheap options, full-size graph) and return its run id."""
    from mechscope.investigate import InvestigateOptions, investigate
    from mechscope.store import open_store

    cheap = dict(n=4, patch_prompts=1, exact_layers=1, top_heads=4, role_seqs=2, role_seq_len=8, ig_steps=1,
                 circuit_prompts=2, minimality_edges=0, min_accuracy=0.0, min_gap=-1e9)
    with open_store(path) as store:
        found = investigate(model, task, InvestigateOptions(**cheap), store=store, progress=not quick,
                            on_stage=lambda s, e, t: e != "start" and print(f"  {s}: {t:.1f} s", flush=True))
    return found.run_id


def newest_investigation(path: Path) -> str | None:
    from mechscope.store import open_store

    with open_store(path) as store:
        runs = [r for r in store.runs(command="investigate") if r.status == "complete"]
    return runs[0].id if runs else None


def serve(app) -> tuple[str, object]:
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def served_times(base: str, paths: list[str], repeats: int) -> dict:
    """Wall time of each GET (the first, from cold caches, and the median of the rest)."""
    import httpx

    out = {}
    with httpx.Client(base_url=base, timeout=120) as client:
        for path in paths:
            times = []
            for _ in range(repeats + 1):
                start = time.perf_counter()
                response = client.get(path)
                times.append(time.perf_counter() - start)
                response.raise_for_status()
            out[path] = {"first_ms": 1000 * times[0], "median_ms": 1000 * statistics.median(times[1:]),
                         "bytes": len(response.content)}
    return out


def cold_view_times(store_path: Path, run_id: str, repeats: int) -> dict:
    """The Run page's data computed with nothing cached (a fresh connection each time): what the
    first visit costs when the server had no time to read it ahead."""
    from mechscope.app.views.investigation import investigation_view
    from mechscope.store import open_store

    times = []
    for _ in range(repeats):
        with open_store(store_path) as store:
            start = time.perf_counter()
            investigation_view(store, run_id)
            times.append(1000 * (time.perf_counter() - start))
    return {"first_ms": times[0], "median_ms": statistics.median(times)}


def rendered_times(base: str, run_id: str, repeats: int, shots: Path) -> dict:
    """Navigation start to the page's ready mark (every section drawn), in Chromium."""
    from playwright.sync_api import sync_playwright

    times, errors = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        for i in range(repeats):
            page.goto(f"{base}/runs/{run_id}")
            page.wait_for_selector("body[data-ready='1']", timeout=60_000)
            times.append(page.evaluate("performance.now()"))
        page.screenshot(path=str(shots / "bench-run.png"), full_page=True)
        browser.close()
    return {"first_ms": times[0], "median_ms": statistics.median(times[1:] or times), "console_errors": errors}


def attention_times(base: str, prompt: str, shots: Path) -> dict:
    """The attention grid: layers fetched before scrolling, time to the first drawn layer and to all."""
    from urllib.parse import quote

    from playwright.sync_api import sync_playwright

    fetched: list[tuple[float, str]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("requestfinished", lambda r: "/api/attention/layer/" in r.url and fetched.append((time.perf_counter(), r.url)))
        start = time.perf_counter()
        page.goto(f"{base}/attention?prompt={quote(prompt)}")
        page.wait_for_selector(".attn-row[data-loaded='1']", timeout=300_000)
        first = time.perf_counter() - start
        page.wait_for_timeout(1500)
        before_scroll = len(fetched)
        n_layers = page.locator(".attn-row").count()
        n_tokens = page.evaluate("window.MS_ATTN && window.MS_ATTN.tokens.length")
        while page.locator(".attn-row[data-loaded='1']").count() < n_layers:
            page.mouse.wheel(0, 900)
            page.wait_for_timeout(200)
            if time.perf_counter() - start > 300:
                break
        every = time.perf_counter() - start
        page.screenshot(path=str(shots / "bench-attention.png"))
        browser.close()
    return {"layers": n_layers, "tokens": n_tokens, "layers_fetched_before_scrolling": before_scroll,
            "first_layer_seconds": first, "all_layers_seconds": every, "layer_requests": len(fetched)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny random model, fewer repetitions")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--store", type=Path, help="a store holding a finished investigation of --model")
    parser.add_argument("--build", type=Path, default=None,
                        help="where to record an investigation when --store is not given")
    parser.add_argument("--build-only", action="store_true", help="record the investigation and stop")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 10)
    if shutil.which("chromium") is None:
        print("chromium is missing (make e2e-setup); the benchmark renders pages in it", file=sys.stderr)
        return 2

    model, task = load(args)
    store = args.store or args.build or Path(tempfile.gettempdir()) / f"mechscope-app-bench{'-quick' if args.quick else ''}.db"
    run_id = newest_investigation(store) if store.exists() else None
    if run_id is None:
        if args.store:
            print(f"{args.store} holds no finished investigation", file=sys.stderr)
            return 2
        print(f"recording an investigation of {model.name} into {store} (once)…", flush=True)
        run_id = build_store(store, model, task, args.quick)
    if args.build_only:
        print(f"run {run_id} in {store}")
        return 0

    from mechscope.app import create_app

    shots = Path(tempfile.mkdtemp(prefix="mechscope-app-shots-"))
    base, server = serve(create_app(store, model=model))
    report = {"model": model.name, "store": str(store), "run": run_id, "machine": platform.machine(),
              "note": "the machine's 2 cores were shared with other jobs: times are upper bounds"}
    time.sleep(5 if args.quick else 20)  # let the server read the newest investigations ahead, as it does at start
    report["served"] = served_times(base, [f"/runs/{run_id}", f"/api/runs/{run_id}/investigation",
                                           f"/api/runs/{run_id}/circuit"], repeats)
    report["data_uncached"] = cold_view_times(store, run_id, repeats)
    report["rendered"] = rendered_times(base, run_id, repeats, shots)
    prompt = PROMPT_32 if not args.quick else "when mary and john went to the store , john gave a drink to"
    report["attention"] = attention_times(base, prompt, shots)
    server.should_exit = True
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"app{'_quick' if args.quick else ''}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    page, data = report["served"][f"/runs/{run_id}"], report["served"][f"/api/runs/{run_id}/investigation"]
    print(f"Run page: HTML {page['median_ms']:.0f} ms, its data {data['median_ms']:.0f} ms (first {data['first_ms']:.0f} ms) "
          f"[target served <= 200 ms]; its data uncached {report['data_uncached']['median_ms']:.0f} ms; rendered {report['rendered']['median_ms']:.0f} ms (first "
          f"{report['rendered']['first_ms']:.0f} ms) [target <= 1000 ms]")
    a = report["attention"]
    print(f"Attention {a['layers']} layers × {a['tokens']} tokens: {a['layers_fetched_before_scrolling']} layers fetched "
          f"before scrolling, first layer {a['first_layer_seconds']:.1f} s, all {a['all_layers_seconds']:.1f} s; wrote {path}; "
          f"screenshots in {shots}")
    return 0


def load(args):
    """The model, and the task to investigate (a name, or a file of prompt pairs)."""
    if args.quick:
        sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
        from tiny import tiny_hf_model, tiny_tokenizer

        from mechscope import HookedModel

        names = "mary john tom alice bob".split()
        path = Path(tempfile.mkdtemp(prefix="mechscope-app-bench-")) / "pairs.jsonl"
        rows = [{"clean": f"when {a} and {b} went to the store , {b} gave a drink to",
                 "corrupt": f"when {a} and {b} went to the store , {c} gave a drink to", "answer": f" {a}",
                 "wrong": f" {b}"} for a in names for b in names for c in names[:1] if len({a, b, c}) == 3]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama-gqa"), str(path)
    import mechscope

    return mechscope.load_model(args.model), "ioi"


if __name__ == "__main__":
    raise SystemExit(main())
