"""A bounded load test on loopback: 200 requests from 20 concurrent clients to the store pages
and 20 to the playground, against the real server (uvicorn). No errors, no deadlock, nothing
lost or mixed up; the median and 95th-percentile latencies are printed and written beside
the test (the machine is shared: they are upper bounds, and not asserted)."""

from __future__ import annotations

import json
import statistics
import threading
import time

import httpx

CLIENTS = 20
STORE_REQUESTS = 200
PLAYGROUND_REQUESTS = 20
WORDS = "the cat dog sat on mat red blue big small".split()


def test_store_pages_and_playground_under_concurrent_clients(server, stored, tmp_path):
    paths = ["/", "/api/runs", f"/runs/{stored.investigation}", f"/api/runs/{stored.investigation}",
             f"/api/runs/{stored.investigation}/investigation", f"/api/runs/{stored.investigation}/circuit",
             f"/api/runs/{stored.patch}/stages/patching", "/api/features/sources", "/compare", "/features"]
    jobs = [("GET", paths[i % len(paths)], None) for i in range(STORE_REQUESTS)]
    prompts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(3 + i % 5)) for i in range(PLAYGROUND_REQUESTS)]
    jobs += [("POST", "/api/playground", {"prompt": p, "k": 3}) for p in prompts]
    jobs = jobs[::2] + jobs[1::2]  # playground requests spread among the store requests
    results: list[tuple] = []
    lock = threading.Lock()
    cursor = iter(range(len(jobs)))

    def client() -> None:
        with httpx.Client(base_url=server, timeout=120) as http:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                method, path, body = jobs[index]
                start = time.perf_counter()
                try:
                    response = http.request(method, path, json=body, headers={"X-Mechscope-Request": "1"})
                    outcome = (response.status_code, response.json() if path == "/api/playground" else None)
                except httpx.HTTPError as error:  # pragma: no cover - reported below
                    outcome = (repr(error), None)
                with lock:
                    results.append((index, path, outcome[0], outcome[1], time.perf_counter() - start))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    wall = time.perf_counter() - started
    assert not any(t.is_alive() for t in threads), "a client is still waiting: deadlock"
    assert sorted(r[0] for r in results) == list(range(len(jobs))), "requests were lost"
    failures = [(path, status) for _, path, status, _, _ in results if status != 200]
    assert not failures, failures[:5]
    for index, path, _, payload, _ in results:
        if path == "/api/playground":  # each answer is its own prompt's
            assert payload["prompt"] == jobs[index][2]["prompt"]
            assert payload["tokens"] == stored.model.to_str_tokens(payload["prompt"])

    report = {}
    for name, chosen in (("store", [r for r in results if r[1] != "/api/playground"]),
                         ("playground", [r for r in results if r[1] == "/api/playground"])):
        times = sorted(1000 * r[4] for r in chosen)
        report[name] = {"requests": len(times), "median_ms": statistics.median(times),
                        "p95_ms": times[max(0, round(0.95 * len(times)) - 1)]}
    report |= {"clients": CLIENTS, "wall_seconds": wall}
    (tmp_path / "load.json").write_text(json.dumps(report, indent=1))
    print(f"\nload: {json.dumps(report)}")
