"""Returning the memory a process freed to the system (no torch here: the map worker uses it too)."""

from __future__ import annotations


def return_freed_memory() -> bool:
    """Hand the memory glibc keeps after frees back to the system (``malloc_trim``); True if some was returned.

    glibc's malloc keeps freed memory for the process's own later use, so without this a process's resident size
    only grows. Elsewhere (macOS, musl) this does nothing: those allocators return memory their own way.
    """
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
