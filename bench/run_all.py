"""Run every benchmark, each in its own process, and print a summary of the targets.

``python -m bench`` (or ``python -m bench.run_all``) runs them in order; ``--quick`` passes ``--quick`` to
each (a smoke test of a few minutes); ``--only encode_speed,train_speed`` picks some. Each script writes its
own ``bench/results/<name>.json``; this runner adds ``bench/results/summary.json`` (or ``summary_quick.json``)
with the wall-clock time of each script it ran and every target of each benchmark's latest result file, met or
not (a benchmark that just failed is left out, not shown with old figures); a full-size run (not ``--quick``,
also with ``--only``) rewrites the README's benchmark table from it. The order puts the app last, so its
server's memory use does not disturb the others. The full suite takes about 20 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS_DIR, format_table

BENCHMARKS = ("encode_speed", "train_speed", "live_finetune", "cached_loss_memory", "quality_per_minute",
              "retrieval_speed", "projection_speed", "session_memory", "app_latency")
# Arguments a benchmark always gets here (live_finetune: compare with the padded trainer).
EXTRA_ARGS = {"live_finetune": ["--compare-before"]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="run the quick version of each benchmark")
    parser.add_argument("--only", default=None, help=f"comma list from: {', '.join(BENCHMARKS)}")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every benchmark")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    suffix = "_quick" if args.quick else ""
    runs, failed = [], []
    for name in names:
        command = [sys.executable, "-m", f"bench.{name}", *EXTRA_ARGS.get(name, [])]
        command += ["--quick"] if args.quick else []
        if args.threads:
            command += ["--threads", str(args.threads)]
        print(f"\n===== {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.run(command, cwd=REPO, env=env, check=False).returncode
        seconds = time.perf_counter() - start
        runs.append({"benchmark": name, "exit_code": code, "seconds": round(seconds, 1)})
        if code != 0:
            failed.append(name)
    targets = collect_targets(suffix, skip=failed)
    print("\n===== summary\n")
    print(format_table(runs))
    print()
    print(format_table(targets) if targets else "(no targets found)")
    summary = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "quick": args.quick,
               "runs": runs, "targets": targets}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"summary{suffix}.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if not args.quick:
        update_readme(REPO / "README.md", targets, summary["created"])
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
    return 1 if failed else 0


def collect_targets(suffix: str = "", skip: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every target of the latest result file of each benchmark, with the date it was measured.

    ``skip``: benchmarks whose run just failed; their older files are left out rather than shown as current.
    """
    targets = []
    for name in BENCHMARKS:
        path = RESULTS_DIR / f"{name}{suffix}.json"
        if name in skip or not path.is_file():
            continue
        payload = json.loads(path.read_text(encoding="utf-8"))
        for t in payload.get("targets", []):
            targets.append({"benchmark": name, "target": t["name"], "measured": t["value"],
                            "goal": ("<= " if not t["higher_is_better"] else ">= ") + f"{t['threshold']:g}"
                            + t.get("unit", ""), "unit": t.get("unit", ""), "met": "yes" if t["met"] else "NO",
                            "measured_on": str(payload.get("created", ""))[:10]})
    return targets


def _with_unit(value: Any, unit: str) -> str:
    if isinstance(value, float):
        return f"{value:.3g}{unit}"
    return f"{value}{unit}"


README_START = "<!-- bench-table:start -->"
README_END = "<!-- bench-table:end -->"


def update_readme(readme: Path, targets: Sequence[Mapping[str, Any]], created: str) -> bool:
    """Replace the table between the README's bench-table markers with ``targets``; False if no markers."""
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    rows = [{**t, "target": str(t["target"]).replace("|", "\\|"),
             "measured": _with_unit(t["measured"], t.get("unit", ""))} for t in targets]
    columns = ["benchmark", "target", "goal", "measured", "met", "measured_on"]
    table = format_table(rows, columns) if rows else "(none)"
    block = f"{README_START}\nLatest results (summary of {created[:10]}, `python -m bench`):\n\n{table}\n"
    readme.write_text(text[:start] + block + text[end:], encoding="utf-8")
    return True


if __name__ == "__main__":
    sys.exit(main())
