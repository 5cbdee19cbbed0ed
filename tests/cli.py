"""Run ``python -m bot ARGS`` in the test's own process: ``app.cli.main(argv)``, with the
environment, working folder, stdin, stdout and stderr of a process of its own.

A new process costs 3-4 s of a core just to import the stack (the whole suite started about
sixty of them only to read what a command prints); here the imports are already done. What
``python -m bot`` adds to ``main`` is ``sys.exit(main())`` (bot/__main__.py), so the exit code
and the output are the process's. Tests about the process itself (signals, kills, a server's
start, the exit of the real interpreter) still start one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tests.conftest import ROOT


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    """The command may configure logging (bot/logs.py: a handler on stderr, levels): as it
    would die with its process, it is undone."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


def run_bot(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    stdin: str = "",
) -> subprocess.CompletedProcess[str]:
    """What ``python -m bot ARGS`` would give, run with ``env`` (default: this process's) in
    ``cwd``: exit code, stdout and stderr."""
    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    with (
        _environment(dict(os.environ) if env is None else env),
        contextlib.chdir(cwd),
        _logging_kept(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _stdin(stdin),
    ):
        try:
            code: int | str | None = main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(
        ["python", "-m", "bot", *args], returncode, out.getvalue(), err.getvalue()
    )


@contextlib.contextmanager
def _stdin(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved
