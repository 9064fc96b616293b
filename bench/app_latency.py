"""App latency: start-up time, similarity-call latency under concurrency and training, peak memory.

Starts ``python app.py`` in a subprocess on a free port of 127.0.0.1 and measures:

- seconds from launch to the first served page (HTTP 200 on ``/``), and to the first similarity answer;
- p50/p95 latency of the similarity handler (Sentence A / Sentence B -> score) for 1 and 8 concurrent
  clients, first on an idle server, then while another session runs a fine-tune (started through the client
  with a long time budget, stopped and cancelled afterwards). Two kinds of client, each its own session:
  ``gradio_client.Client``, whose reader sleeps 50 ms whenever no message is waiting (so a call costs about
  60-70 ms even for an empty handler, and 8 clients share the benchmark's 2 cores with the server), and
  gradio's HTTP API read as an event stream (``/gradio_api/call/<api>``), which is how a browser or ``curl``
  gets results: no client-side polling;
- the server's peak resident memory (``VmHWM`` in ``/proc/<pid>/status``).

As a reference it times the same computation in-process (``encoder.similarity`` on the bundled model), so
the serving overhead shows. The API names are discovered with ``client.view_api()`` (the endpoint whose
inputs are labelled "Sentence A"/"Sentence B", and the one with a "Time budget" input). All traffic goes to
127.0.0.1 and every loop is bounded. Run ``python -m bench.app_latency --help``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from bench.common import REPO, Target, latency_samples, make_parser, percentile, report, setup, time_call

NAME = "app_latency"
PAIRS = [
    ("A man is playing a guitar.", "Someone plays an instrument."),
    ("The stock market fell sharply today.", "Share prices dropped."),
    ("A dog runs in the park.", "A cat sleeps on the sofa."),
    ("She is cooking dinner in the kitchen.", "A woman prepares a meal."),
    ("The train was late again.", "Rain is expected tomorrow."),
    ("Children are reading books at school.", "Kids study in a classroom."),
    ("He drives a red car.", "A man is driving a vehicle."),
    ("The bank raised interest rates.", "Birds sing in the morning."),
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_page(url: str, timeout_s: float, proc: subprocess.Popen) -> float | None:
    """Poll ``url`` until it answers 200; seconds waited, or None on timeout or if the server died."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if proc.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.1)
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process, all threads (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid: int, timeout_s: float = 180.0, window_s: float = 2.0, busy: float = 0.15) -> float:
    """Wait until a process uses less than ``busy`` of one core over ``window_s``; seconds waited (bounded)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        before = cpu_seconds(pid)
        time.sleep(window_s)
        if (cpu_seconds(pid) - before) / window_s < busy:
            break
    return time.perf_counter() - start


def peak_rss_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak) and VmRSS (now) of a process, in MiB (Linux /proc)."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) / 1024.0
    except OSError:
        pass
    return out


def find_endpoints(client) -> tuple[str, dict[str, Any] | None, str | None]:
    """(similarity api name, fine-tune endpoint info, stop api name), found by input labels."""
    api = client.view_api(print_info=False, return_format="dict")
    endpoints = api.get("named_endpoints", {})
    similarity, finetune, stop = None, None, None
    for name, info in endpoints.items():
        labels = [str(p.get("label", "")) for p in info.get("parameters", [])]
        if "Sentence A" in labels and "Sentence B" in labels and similarity is None:
            similarity = name
        if any(label.startswith("Time budget") for label in labels) and finetune is None:
            finetune = {"name": name, "parameters": info.get("parameters", []), "returns": info.get("returns")}
    if finetune is not None:  # the Stop button: no inputs (only the session state), same outputs as the run
        stop = next((name for name, info in endpoints.items()
                     if not info.get("parameters") and info.get("returns") == finetune["returns"]), None)
    if similarity is None:
        raise RuntimeError(f"No endpoint with 'Sentence A'/'Sentence B' inputs among {sorted(endpoints)}.")
    return similarity, finetune, stop


def similarity_defaults(client, api_name: str) -> list[Any]:
    """Default values of the similarity endpoint's inputs after the two sentences (model, pooler)."""
    api = client.view_api(print_info=False, return_format="dict")
    parameters = api["named_endpoints"][api_name]["parameters"]
    return [p.get("parameter_default") for p in parameters[2:]]


def finetune_kwargs(parameters: list[dict[str, Any]], steps: int, budget_s: float) -> dict[str, Any]:
    """Keyword arguments for the fine-tune endpoint: its defaults, with many steps and a long budget."""
    kwargs: dict[str, Any] = {}
    for p in parameters:
        label = str(p.get("label", ""))
        value = p.get("parameter_default")
        if label.startswith("Steps"):
            value = steps
        elif label.startswith("Time budget"):
            value = budget_s
        kwargs[p["parameter_name"]] = value  # no default (an upload): None
    return kwargs


class GradioClientCaller:
    """One visitor through ``gradio_client`` (its own session). Its reader polls for messages every 50 ms."""

    def __init__(self, url: str, api_name: str) -> None:
        from gradio_client import Client

        self.client, self.api_name = Client(url, verbose=False), api_name

    def __call__(self, a: str, b: str) -> None:
        self.client.predict(a, b, api_name=self.api_name)

    def close(self) -> None:
        self.client.close()


class HttpCaller:
    """One visitor through gradio's HTTP API (POST /gradio_api/call, then read the event stream), the way
    ``curl`` or a browser's EventSource gets results: no polling on the client side."""

    def __init__(self, url: str, api_name: str, defaults: list[Any]) -> None:
        self.url, self.api, self.defaults = url, api_name.lstrip("/"), defaults

    def __call__(self, a: str, b: str) -> None:
        body = json.dumps({"data": [a, b, *self.defaults]}).encode()
        request = urllib.request.Request(f"{self.url}gradio_api/call/{self.api}", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            event_id = json.load(response)["event_id"]
        with urllib.request.urlopen(f"{self.url}gradio_api/call/{self.api}/{event_id}", timeout=60) as stream:
            event = None
            for raw in stream:
                line = raw.decode("utf-8").strip()
                if line.startswith("event:"):
                    event = line[len("event:"):].strip()
                elif line.startswith("data:") and event == "complete":
                    return
                elif line.startswith("data:") and event == "error":
                    raise RuntimeError(f"the app answered with an error: {line[:200]}")
        raise RuntimeError("the event stream ended without a result")

    def close(self) -> None:
        pass


def similarity_latencies(make_caller, clients: int, calls: int) -> list[float]:
    """Latencies (s) of ``calls`` similarity calls by each of ``clients`` concurrent callers."""
    callers = [make_caller() for _ in range(clients)]
    for k, call in enumerate(callers):  # one untimed call each: session set-up
        call(*PAIRS[k % len(PAIRS)])
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def worker(k: int) -> None:
        barrier.wait(timeout=60)
        for j in range(calls):
            a, b = PAIRS[(k + j) % len(PAIRS)]
            try:
                seconds, _ = time_call(lambda: callers[k](a, b + f" ({j})"))
            except Exception as err:  # noqa: BLE001 - gradio_client raises plain Exception subclasses
                with lock:
                    errors.append(err)
                continue
            with lock:
                latencies.append(seconds)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    for call in callers:
        call.close()
    if errors:
        print(f"  {len(errors)} failed calls, first: {errors[0]!r}")
    return latencies


def _row(condition: str, via: str, clients: int, latencies: list[float]) -> dict[str, Any]:
    if not latencies:
        return {"condition": condition, "via": via, "clients": clients, "calls": 0}
    return {"condition": condition, "via": via, "clients": clients, "calls": len(latencies),
            "p50_ms": 1e3 * percentile(latencies, 50), "p95_ms": 1e3 * percentile(latencies, 95),
            "max_ms": 1e3 * max(latencies)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--startup-timeout", type=float, default=240.0, help="seconds to wait for the page")
    parser.add_argument("--startup-only", action="store_true", help="measure the start-up only (prints, no file)")
    args = parser.parse_args(argv)
    if args.startup_only:
        args.no_write = True
    setup(args)
    calls_single = args.repeats or (5 if args.quick else 30)
    calls_each = 2 if args.quick else 20  # 160 calls for 8 clients: a p95 that one stall cannot decide
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    env.pop("GRADIO_SERVER_PORT", None)
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        log_path = log.name
    with open(log_path, "w", encoding="utf-8") as log:
        launched = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        page_s = wait_for_page(url, args.startup_timeout, proc)
        if page_s is None:
            tail = open(log_path, encoding="utf-8").read()[-3000:]
            raise RuntimeError(f"The app did not serve {url} within {args.startup_timeout:.0f} s:\n{tail}")
        from gradio_client import Client

        client = Client(url, verbose=False)
        similarity, finetune, stop = find_endpoints(client)
        first_s, _ = time_call(lambda: client.predict(*PAIRS[0], api_name=similarity))  # the first visitor
        extra.update({"startup_to_page_s": page_s, "first_similarity_s": first_s,
                      "first_similarity_after_launch_s": time.perf_counter() - launched,
                      "similarity_api": similarity, "finetune_api": finetune and finetune["name"],
                      "stop_api": stop})
        wait_until_idle(proc.pid)  # the app's background warm-up (model, corpus index, UMAP)
        extra["launch_to_warm_up_done_s"] = time.perf_counter() - launched
        extra["rss_after_warm_up_mb"] = peak_rss_mb(proc.pid)
        print(f"  page after {page_s:.1f} s, first answer {first_s:.1f} s later, server idle after "
              f"{extra['launch_to_warm_up_done_s']:.1f} s; endpoints {similarity}, "
              f"{finetune and finetune['name']}, {stop}")
        if args.startup_only:
            return extra

        defaults = similarity_defaults(client, similarity)
        callers = {"gradio_client": lambda: GradioClientCaller(url, similarity),
                   "http api": lambda: HttpCaller(url, similarity, defaults)}

        def measure(condition: str) -> None:
            for via, make in callers.items():
                rows.append(_row(condition, via, 1, similarity_latencies(make, 1, calls_single)))
                rows.append(_row(condition, via, 8, similarity_latencies(make, 8, calls_each)))

        measure("idle")

        if finetune is not None:
            trainer = Client(url, verbose=False)
            job = trainer.submit(**finetune_kwargs(finetune["parameters"], steps=2000, budget_s=900.0),
                                 api_name=finetune["name"])
            deadline = time.perf_counter() + 60
            while time.perf_counter() < deadline and len(job.outputs()) < 2 and not job.done():
                time.sleep(0.5)  # the first streamed update is the baseline; the second means training runs
            extra["finetune_streamed_updates_before_measuring"] = len(job.outputs())
            measure("fine-tune running")
            extra["finetune_updates_during_measurement"] = len(job.outputs())
            extra["finetune_still_running"] = not job.done()
            if stop is not None:
                try:
                    trainer.predict(api_name=stop)
                except Exception as err:  # noqa: BLE001 - report, then cancel anyway
                    extra["stop_error"] = repr(err)
            job.cancel()
            trainer.close()
        extra["rss_mb"] = peak_rss_mb(proc.pid)
        client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    from simcse_core import load_encoder

    encoder = load_encoder("minilm", device="cpu")
    direct = latency_samples(lambda: encoder.similarity([PAIRS[0][0]], [PAIRS[0][1]]), calls_single)
    rows.append(_row("in-process encoder.similarity (no server)", "python", 1, direct))
    peak = extra.get("rss_mb", {}).get("VmHWM", float("nan"))
    def p95(condition: str, via: str) -> float:
        row = next((r for r in rows if (r["condition"], r["via"], r["clients"]) == (condition, via, 8)), {})
        return row.get("p95_ms", float("nan"))

    targets = [Target(f"similarity p95, 8 concurrent clients ({via}) while another session trains",
                      p95("fine-tune running", via), 300.0, higher_is_better=False, unit=" ms")
               for via in ("gradio_client", "http api")]
    targets.append(Target("launch to first similarity answer (python app.py, gradio_client)",
                          extra["first_similarity_after_launch_s"], 3.0, higher_is_better=False, unit=" s"))
    notes = [
        f"start-up: first page after {extra['startup_to_page_s']:.1f} s; first similarity answer "
        f"{extra['first_similarity_s'] * 1e3:.0f} ms later (launch to answer "
        f"{extra['first_similarity_after_launch_s']:.1f} s).",
        f"background warm-up (model, bundled corpus index, UMAP compile) done {extra['launch_to_warm_up_done_s']:.1f}"
        " s after launch (server CPU idle); latencies are measured after it.",
        f"server peak RSS (VmHWM) {peak:.0f} MiB.",
        f"similarity endpoint {extra['similarity_api']}; {calls_single} calls for 1 client, {calls_each} per client "
        f"for 8; fine-tune endpoint {extra.get('finetune_api')} (2000 steps, 900 s budget, stopped afterwards).",
    ]
    print(f"  server log: {log_path}")
    return report(NAME, args, rows, targets=targets, notes=notes, extra=extra)


if __name__ == "__main__":
    main()
