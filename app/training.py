"""Train the understanding's classifier in a child process while the bot starts answering.

Importing scikit-learn (1.3-4.6 s) and training (about 2 s) in a thread of the bot's own
process held the interpreter's lock while the first citizens' buttons and numbers waited: on
bench/throughput.py the median reply went from 11 ms to 103 ms. A child process (spawned, not
forked: the bot runs threads) does both on another core and sends back plain arrays
(:class:`bot.classifier.Fitted`, about 8 MB pickled), which a thread here hands to the
component; the bot's process never imports scikit-learn. Until then a message that needs the
classifier trains it in-process as before (:meth:`Understanding.warm`), so nothing is lost if
the child fails.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from bot.classifier import Fitted, fit
from bot.understanding import Understanding

log = logging.getLogger(__name__)


class Training:
    """One training of ``understanding``'s classifier in a child process; :meth:`close`
    ends the child if it is still at work (a process that stops early wastes no CPU)."""

    def __init__(self, understanding: Understanding):
        self._understanding = understanding
        self._process: BaseProcess | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.done = threading.Event()

    def start(self) -> None:
        if self._understanding.ready:
            self.done.set()
            return
        self._understanding.expect(self.done)
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        texts, labels = self._understanding.training
        self._process = context.Process(
            target=_train,
            args=(send, texts, labels, os.getpid()),
            name="understanding",
            daemon=True,
        )
        self._process.start()
        send.close()
        self._thread = threading.Thread(
            target=self._receive, args=(receive,), name="understanding", daemon=True
        )
        self._thread.start()

    def _receive(self, receive: Connection) -> None:
        # Taking the result in opens no file: what unpickling and install() use (numpy,
        # scipy, bot.classifier) was imported with this module, before the server accepts.
        # A flood of connections in the first seconds can take every descriptor left
        # (bench/faults.py: "Too many open files" when the training ran in a thread here).
        # Whatever fails, the messages that wait for the classifier are let go.
        try:
            try:
                fitted = receive.recv()
            finally:
                receive.close()
            if self._process is not None:
                self._process.join(timeout=5)  # reaped: no zombie, and its CPU time counted
            if isinstance(fitted, Fitted):
                self._understanding.install(fitted)
            elif not self._closing:
                log.warning("training in a child process failed; the first message trains it")
        except Exception as exc:
            if not self._closing:
                log.warning(
                    "training in a child process failed (%s); the first message trains it",
                    type(exc).__name__,
                )
        finally:
            self.done.set()

    def close(self) -> None:
        self._closing = True
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()
        if process is not None:
            process.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)


#: prctl(2): a signal for this process when its parent dies.
PR_SET_PDEATHSIG = 1


def _train(send: Connection, texts: list[str], labels: list[str], parent: int) -> None:
    """The child's work: train, send the arrays back. A bot killed meanwhile (SIGKILL, as
    bench/faults.py does) takes its training with it: it trained on for seconds of CPU with
    nobody to use it, then printed a traceback into the bot's log (a broken pipe)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        return  # gone before the request was made
    try:
        send.send(fit(texts, labels))
    except BrokenPipeError:
        pass  # the bot stopped meanwhile (close(), or a kill)
    finally:
        send.close()
