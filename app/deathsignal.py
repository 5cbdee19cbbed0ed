"""Dying with one's parent: Linux's ``prctl(PR_SET_PDEATHSIG)``, asked once here for the
serve workers (app/workers.py) and the understanding's training child (app/training.py)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

#: prctl(2)'s option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


@functools.cache
def libc() -> ctypes.CDLL:
    # Looked up before any fork: find_library may run a program, not to be done between
    # fork and exec.
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def request_death_signal(signal: int, lib: ctypes.CDLL | None = None) -> bool:
    """Ask the kernel to send ``signal`` to this process when its parent dies (it survives
    exec); True if it took the request. Pass ``lib`` between fork and exec."""
    return int((lib or libc()).prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0)) == 0
