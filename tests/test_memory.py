"""simcse_core.memory: the malloc arenas a serving process may use (glibc only; each case in a fresh process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from simcse_core.memory import MALLOC_ARENAS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

# Eight threads allocate at once; then glibc's malloc_info counts the process's arenas (one <heap> each).
COUNT_ARENAS = textwrap.dedent("""
    import ctypes, sys, tempfile, threading
    from simcse_core.memory import limit_malloc_arenas
    print(limit_malloc_arenas() if sys.argv[1] == "limit" else None)
    barrier, kept = threading.Barrier(8), []
    def allocate():
        barrier.wait()
        kept.append(bytearray(200_000))
    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    libc = ctypes.CDLL("libc.so.6")
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile("r") as out:
        stream = ctypes.c_void_p(libc.fopen(out.name.encode(), b"w"))
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        print(out.read().count("<heap nr="))
""")


def _arenas(how: str, **env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    out = subprocess.run([sys.executable, "-c", COUNT_ARENAS, how], capture_output=True, text=True, check=True,
                         env=environ, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    said, count = out.stdout.split()
    return said, int(count)


def test_limit_malloc_arenas_caps_the_arenas_threads_make() -> None:
    assert _arenas("free")[1] > MALLOC_ARENAS  # glibc alone gives the threads arenas of their own
    assert _arenas("limit") == ("True", MALLOC_ARENAS)


def test_an_operators_malloc_arena_max_wins() -> None:
    assert _arenas("limit", MALLOC_ARENA_MAX="3") == ("False", 3)
