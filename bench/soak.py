"""Soak test: a class of simulated visitors on one server, then the server left alone.

Starts ``python app.py`` on a free port of 127.0.0.1 (loopback only) and runs ``--visitors`` simulated
students for ``--minutes``, each its own gradio_client session, each pausing 1-4 s between requests (reading
the answer) and mixing similarity (45 %), search (30 %), heatmaps (15 %) and embedding maps (10 %). At one
minute, ``--burst`` of them press Start on a short fine-tune within the same second, and ``--runs-per-trainer``
runs each over the soak. It reports requests, errors, p50/p95 per endpoint, each run's wait in the training
queue (and the estimate the app showed), and the server's resident memory every 5 s, during the soak and
for ``--idle-s`` after the visitors have left. The class comes once the started server's memory holds still
(``--settle-s``), as in a server started before its class, so the soak's start is a server at rest. Each
visitor holds the page's heartbeat open as a browser tab does (:class:`OpenTab`) and closes it when it leaves,
so the server ends its session as on a closed tab.

    python -m bench.soak                      # 30 visitors, 10 minutes (the issue's classroom)
    python -m bench.soak --preset school      # the same class behind one school address (one NAT)
    python -m bench.soak --preset short       # 30 visitors, 4 minutes
    python -m bench.soak --quick              # a smoke run

``--shared-address`` puts every visitor behind one X-Forwarded-For address (a school's NAT): each is still a
person of its own (a gradio_client session), so the per-person limit holds them and the per-address backstop
caps the class. The results name the preset; targets: p99 ≤ 1 s for similarity, heatmap and search, the map's
p95 ≤ 3 s, no errors, RSS peak ≤ 3 GiB and back within 200 MB of the soak's start after ``--idle-s``.

Every loop is bounded by the deadline; the server is stopped at the end.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from typing import Any

from bench.app_latency import free_port, wait_for_page
from bench.common import REPO, Target, make_parser, percentile, report, setup
from simcse_core.training.config import setting_default

NAME = "soak"
BASE = "Bundled: all-MiniLM-L6-v2"
SAMPLE = "Sample sentences (unsupervised)"
SENTENCES = [
    "A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell sharply today.",
    "Share prices dropped.", "A dog runs in the park.", "A cat sleeps on the sofa.", "The train was late again.",
    "Children are reading books at school.", "He drives a red car.", "The bank raised interest rates.",
]
QUERIES = ["How do vaccines protect people?", "A player scored in the last minute of the match.",
           "What happens when interest rates go up?", "a new phone with a better camera"]
# The /finetune endpoint's inputs: data, upload, mode, steps, batch, lr, τ, dropout, pooler, training length.
FINETUNE_ARGS = (SAMPLE, None, "unsup", 40, 32, *(setting_default(name) for name in ("lr", "temperature", "dropout")),
                 "cls_before_pooler", setting_default("max_length"))


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` and every process it started (a server's workers are its memory too)."""
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        own = next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:")), float("nan"))
    children = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="utf-8") as f:
                children.update(int(child) for child in f.read().split())
        except OSError:
            continue
    for child in children:
        try:
            own += rss_mib(child)
        except OSError:  # it ended meanwhile
            continue
    return own


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used so far."""
    times = os.times()
    return times.user + times.system


class Log:
    """Thread-safe record of every request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.runs: list[dict[str, Any]] = []

    def add(self, endpoint: str, seconds: float, error: str | None = None) -> None:
        with self.lock:
            if error is None:
                self.latencies[endpoint].append(seconds)
            else:
                self.errors[endpoint].append(error[:200])


def timed(log: Log, endpoint: str, call) -> None:
    start = time.perf_counter()
    try:
        call()
    except Exception as err:  # noqa: BLE001 - every failure is counted and reported
        log.add(endpoint, 0.0, f"{type(err).__name__}: {err}")
    else:
        log.add(endpoint, time.perf_counter() - start)


def finetune(client, log: Log, budget_s: float) -> None:
    """One run: the wait until it starts (and the wait the app estimated), and its whole duration."""
    start = time.perf_counter()
    first_estimate, started_after, error = None, None, None
    try:
        job = client.submit(*FINETUNE_ARGS, budget_s, BASE, api_name="/finetune")
        for out in job:
            status = out[0] if isinstance(out, (list, tuple)) else ""
            if not isinstance(status, str):
                continue
            match = re.search(r"within \*\*(?:(\d+) min )?(\d+) s\*\*", status)
            if match and first_estimate is None:
                first_estimate = int(match.group(1) or 0) * 60 + int(match.group(2))
            if "Starting run" in status and started_after is None:
                started_after = time.perf_counter() - start
        job.result(timeout=900)
    except Exception as err:  # noqa: BLE001
        error = f"{type(err).__name__}: {err}"
    total = time.perf_counter() - start
    log.add("finetune", total, error)
    with log.lock:
        log.runs.append({"queue_wait_s": None if started_after is None else round(started_after, 1),
                         "estimated_wait_s": first_estimate, "total_s": round(total, 1), "error": error})


SCHOOL_ADDRESS = "203.0.113.7"  # the whole class behind one NAT (--shared-address)
PRESETS = {"classroom": {"visitors": 30, "minutes": 10.0, "shared_address": False},
           "school": {"visitors": 30, "minutes": 10.0, "shared_address": True},
           "short": {"visitors": 30, "minutes": 4.0, "shared_address": False}}


def visitor_address(k: int, shared: bool = False) -> str:
    """Visitor ``k``'s address: the server runs with --trusted-proxy and reads the X-Forwarded-For address, as
    behind a Space's proxy; each simulated student has their own (all are on loopback), or with ``shared`` the
    whole class has one."""
    return SCHOOL_ADDRESS if shared else f"10.19.{k // 250}.{k % 250 + 1}"


def connect(url: str, log: Log, attempts: int = 5, address: str | None = None):
    """A gradio_client session (its page load); a failed attempt is counted as an error of "connect"."""
    from gradio_client import Client

    headers = {"X-Forwarded-For": address} if address else None
    for _ in range(attempts):
        start = time.perf_counter()
        try:
            # Plain HTTP on loopback: no certificate is ever checked, and gradio_client otherwise builds a TLS
            # context (loading the CA bundle) for every request, which took 45 % of this process's CPU samples.
            client = Client(url, verbose=False, headers=headers, httpx_kwargs={"timeout": 120}, ssl_verify=False)
        except Exception as err:  # noqa: BLE001 - counted, then retried
            log.add("connect", 0.0, f"{type(err).__name__}: {err}")
            time.sleep(2)
        else:
            log.add("connect", time.perf_counter() - start)
            return client
    return None


class OpenTab:
    """The heartbeat stream a browser tab holds open (``/gradio_api/heartbeat/<session>``): when it closes,
    gradio runs the page's unload event for that session, as when a student closes the tab. A gradio_client
    session opens none, so without it a visitor's session would outlive the soak (for the app's API-session
    time to live)."""

    def __init__(self, url: str, session_hash: str, headers: dict | None) -> None:
        self._url = f"{url}gradio_api/heartbeat/{session_hash}"
        self._headers = headers
        self._response = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()

    def _hold(self) -> None:
        import httpx

        try:
            with httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as http, \
                    http.stream("GET", self._url, headers=self._headers) as response:
                self._response = response
                for _ in response.iter_lines():
                    if self._closed.is_set():
                        return
        except (httpx.HTTPError, RuntimeError):  # closed from close(), or the server went away
            return

    def close(self) -> None:
        self._closed.set()
        if self._response is not None:
            self._response.close()
        self._thread.join(timeout=5)


def visitor(k: int, url: str, log: Log, deadline: float, burst_at: float | None, barrier: threading.Barrier | None,
            runs: int, budget_s: float, shared: bool = False) -> None:
    rng = random.Random(k)
    address = visitor_address(k, shared)
    client = connect(url, log, address=address)
    if client is None:
        return
    tab = OpenTab(url, client.session_hash, {"X-Forwarded-For": address})
    runs_left = runs
    try:
        while time.monotonic() < deadline:
            if burst_at is not None and runs_left and time.monotonic() >= burst_at:
                if barrier is not None and runs_left == runs:
                    try:
                        barrier.wait(timeout=30)  # the burst: Start pressed within the same second
                    except threading.BrokenBarrierError:
                        pass
                finetune(client, log, budget_s)
                runs_left -= 1
                burst_at = time.monotonic() + rng.uniform(30, 90)
                continue
            roll = rng.random()
            if roll < 0.45:
                a, b = rng.sample(SENTENCES, 2)
                timed(log, "similarity", lambda: client.predict(a, b, BASE, "mean", api_name="/similarity"))
            elif roll < 0.75:
                q = rng.choice(QUERIES)
                timed(log, "search", lambda: client.predict(q, 5, -1, BASE, "mean", api_name="/search"))
            elif roll < 0.90:
                block = "\n".join(rng.sample(SENTENCES, 6))
                timed(log, "heatmap", lambda: client.predict(block, BASE, "mean", api_name="/heatmap"))
            else:
                timed(log, "embedding_map", lambda: client.predict(False, BASE, "mean", api_name="/embedding_map"))
            time.sleep(rng.uniform(1.0, 4.0))
    finally:
        tab.close()
        try:
            client.close()
        except Exception:  # noqa: BLE001 - older clients have no close()
            pass


def settle(rss: list[tuple[float, float, str]], limit_s: float) -> None:
    """Wait (at most ``limit_s``) until the server's memory holds still, as a server started before its class
    is: its start-up work in the background (the map worker compiling UMAP) is then done, and the soak's start
    is a server at rest."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(5)
        last = [m for _, m, _ in rss[-3:]]
        if len(last) == 3 and max(last) - min(last) < 10:
            return


def empty_rooms(rss: list[tuple[float, float, str]], rounds: int) -> list[float]:
    """The server's RSS (MiB) at the end of each class's empty room, for the classes whose room was sampled: a
    growth per class needs at least two."""
    phases = ["after visitors left", *(f"after class {k + 1} left" for k in range(1, rounds))]
    rooms = [[m for _, m, p in rss if p == phase] for phase in phases]
    return [room[-1] for room in rooms if room]


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=5, help="visitors who press Start in the same second")
    parser.add_argument("--runs-per-trainer", type=int, default=2)
    parser.add_argument("--budget-s", type=float, default=20.0, help="time budget of each fine-tune")
    parser.add_argument("--idle-s", type=float, default=120.0, help="memory watched after the visitors leave")
    parser.add_argument("--rounds", type=int, default=1,
                        help="classes one after the other on the same server, each followed by --idle-s without "
                             "visitors: growth from one empty room to the next is what a class leaves behind")
    parser.add_argument("--settle-s", type=float, default=90.0,
                        help="wait at most this long for the started server's memory to hold still before the class")
    parser.add_argument("--shared-address", action="store_true", help="every visitor behind one address (a NAT)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="visitors, minutes and address sharing of a named soak (flags given override nothing)")
    args = parser.parse_args(argv)
    setup(args)
    if args.preset:
        for name, value in PRESETS[args.preset].items():
            setattr(args, name, value)
    if args.quick:
        args.visitors, args.minutes, args.burst, args.runs_per_trainer, args.idle_s = 6, 1.5, 2, 1, 30
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log_file = tempfile.NamedTemporaryFile("w+", prefix="soak-server-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--trusted-proxy"],
                            cwd=REPO,
                            env=env, stdout=log_file, stderr=subprocess.STDOUT)
    rss: list[tuple[float, float, str]] = []
    stop_sampling = threading.Event()
    t0 = time.monotonic()
    phase = {"name": "start-up"}

    def sample() -> None:
        while not stop_sampling.is_set():
            try:
                rss.append((round(time.monotonic() - t0, 1), round(rss_mib(proc.pid), 1), phase["name"]))
            except OSError:
                return
            stop_sampling.wait(5)

    threading.Thread(target=sample, daemon=True).start()
    log = Log()
    try:
        if wait_for_page(url, 180, proc) is None:
            raise SystemExit(f"the server did not start; see {log_file.name}")
        from gradio_client import Client

        warm = Client(url, verbose=False)
        warm.predict("a", "b", BASE, "mean", api_name="/similarity")
        warm.predict(QUERIES[0], 5, -1, BASE, "mean", api_name="/search")
        settle(rss, args.settle_s)
        soak_s, cpu_at_start = 0.0, cpu_seconds()
        for class_k in range(args.rounds):  # each round a new class on the same server, then the room empty
            phase["name"] = "visitors" if class_k == 0 else f"visitors, class {class_k + 1}"
            start = time.monotonic()
            deadline = start + args.minutes * 60
            burst_at = start + min(60.0, args.minutes * 60 / 4)
            barrier = threading.Barrier(args.burst) if args.burst else None
            first = class_k * args.visitors  # new people each class
            threads = [threading.Thread(target=visitor, args=(first + k, url, log, deadline,
                                                              burst_at if k < args.burst else None,
                                                              barrier if k < args.burst else None,
                                                              args.runs_per_trainer, args.budget_s,
                                                              args.shared_address), daemon=True)
                       for k in range(args.visitors)]
            for thread in threads:  # visitors arrive over about 15 s, as a class opening the link
                thread.start()
                time.sleep(0.5)
            for thread in threads:
                thread.join(timeout=max(1.0, deadline - time.monotonic()) + 900)
            soak_s += time.monotonic() - start
            client_cpu_s = cpu_seconds() - cpu_at_start  # the simulated visitors' own CPU, on the server's cores
            phase["name"] = "after visitors left" if class_k == 0 else f"after class {class_k + 1} left"
            time.sleep(args.idle_s)
    finally:
        stop_sampling.set()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()

    rows = []
    for endpoint in sorted(set(log.latencies) | set(log.errors)):
        times = log.latencies.get(endpoint, [])
        rows.append({"endpoint": endpoint, "requests": len(times) + len(log.errors.get(endpoint, [])),
                     "errors": len(log.errors.get(endpoint, [])),
                     "p50_s": round(statistics.median(times), 3) if times else None,
                     "p95_s": round(percentile(times, 95), 3) if times else None,
                     "p99_s": round(percentile(times, 99), 3) if times else None})
    total = sum(r["requests"] for r in rows)
    errors = sum(r["errors"] for r in rows)
    during = [m for _, m, p in rss if p.startswith("visitors")]
    after = [m for _, m, p in rss if p == "after visitors left"]
    waits = [r["queue_wait_s"] for r in log.runs if r["queue_wait_s"] is not None]
    notes = [f"{args.visitors} visitors for {soak_s / 60:.1f} min: {total} requests "
             f"({total / soak_s:.1f}/s), {errors} errors.",
             f"Server RSS: {during[0] if during else float('nan'):.0f} MiB at the start of the soak, peak "
             f"{max(during, default=float('nan')):.0f} MiB, {after[-1] if after else float('nan'):.0f} MiB after "
             f"{args.idle_s:.0f} s without visitors (the first class).",
             f"The simulated visitors ran on the same {os.cpu_count()} cores as the server and used "
             f"{client_cpu_s / soak_s / (os.cpu_count() or 1):.0%} of them while they were there.",
             f"Fine-tunes: {len(log.runs)}; wait in the training queue p50 "
             f"{statistics.median(waits) if waits else float('nan'):.0f} s, max {max(waits, default=0):.0f} s."]
    by_endpoint = {r["endpoint"]: r for r in rows}
    targets = [Target("errors", errors, 0, higher_is_better=False)]
    for endpoint in ("similarity", "heatmap", "search"):
        if by_endpoint.get(endpoint, {}).get("p99_s") is not None:
            targets.append(Target(f"{endpoint} p99 during the soak", by_endpoint[endpoint]["p99_s"], 1.0,
                                  higher_is_better=False, unit=" s"))
    if by_endpoint.get("embedding_map", {}).get("p95_s") is not None:
        targets.append(Target("embedding map p95 during the soak", by_endpoint["embedding_map"]["p95_s"], 3.0,
                              higher_is_better=False, unit=" s"))
    if during:
        targets.append(Target("RSS peak during the soak", max(during), 3 * 1024, higher_is_better=False,
                              unit=" MiB"))
    if during and after:
        targets.append(Target(f"RSS {args.idle_s:.0f} s after the visitors left, above the soak's start",
                              after[-1] - during[0], 200, higher_is_better=False, unit=" MiB"))
    empty = empty_rooms(rss, args.rounds)
    if len(empty) > 1:
        notes.append("RSS with the room empty after each class: " + " → ".join(f"{m:.0f}" for m in empty) + " MiB")
        targets.append(Target(f"RSS growth from one empty room to the next, per class ({args.rounds} classes)",
                              (empty[-1] - empty[0]) / (len(empty) - 1), 200, higher_is_better=False, unit=" MiB"))
    extra = {"preset": args.preset, "rounds": args.rounds, "shared_address": args.shared_address, "rss_mib": rss,
             "runs": log.runs,
             "error_samples": {k: v[:5] for k, v in log.errors.items()},
             "soak_s": round(soak_s, 1), "client_cpu_s": round(client_cpu_s, 1), "server_log": log_file.name}
    name = f"{NAME}_{args.preset}" if args.preset else NAME
    report(f"{name}_{args.rounds}_classes" if args.rounds > 1 else name, args, rows, targets=targets, extra=extra,
           notes=notes)


if __name__ == "__main__":
    main()
