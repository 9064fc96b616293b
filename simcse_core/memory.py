"""Returning the memory a process freed to the system (no torch here: the map worker uses it too)."""

from __future__ import annotations

import ctypes
import os

# The malloc arenas a serving process may use (glibc's default: 8 per core). Each thread that allocates gets an
# arena of its own while the limit allows, and ``malloc_trim`` returns only whole free pages of each: the objects a
# busy server leaves alive across many arenas keep much of what it freed (bench/malloc_arenas.py measures it).
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def return_freed_memory() -> bool:
    """Hand the memory glibc keeps after frees back to the system (``malloc_trim``); True if some was returned.

    glibc's malloc keeps freed memory for the process's own later use, so without this a process's resident size
    only grows. Elsewhere (macOS, musl) this does nothing: those allocators return memory their own way.
    """
    libc = _libc()
    try:
        return bool(libc.malloc_trim(0)) if libc else False
    except AttributeError:
        return False


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Let glibc's malloc make at most ``arenas`` arenas from now on; True if set.

    Call it before the process starts its threads: a thread keeps the arena it already has. ``MALLOC_ARENA_MAX``
    in the environment wins (the operator's choice). Elsewhere (macOS, musl) this does nothing.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    libc = _libc()
    try:
        return bool(libc.mallopt(_M_ARENA_MAX, arenas)) if libc else False
    except AttributeError:
        return False
