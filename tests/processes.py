"""Processes in tests: whether one still runs, and a parent killed to see whether its child
goes with it (a bot's training child, a supervisor's worker still starting)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie has ended: it only waits for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def child_outlives_its_killed_parent(script: str, *, after: float = 0.0, within: float) -> bool:
    """Run ``script`` (``python -c``, in the project's folder): it starts a child and prints
    the child's pid. ``after`` seconds later SIGKILL the script's process; whether the child
    still runs ``within`` seconds after that (polled: a child that goes at once is seen to)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    child = None
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(after)
        parent.kill()
        parent.wait()
        gone = time.monotonic() + within
        while time.monotonic() < gone and running(child):
            time.sleep(0.05)
        return running(child)
    finally:
        parent.kill()
        parent.wait()
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
