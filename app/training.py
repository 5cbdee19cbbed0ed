"""Train the understanding's classifier in a child process while the bot starts answering.

Importing scikit-learn (1.3-4.6 s) and training (about 2 s) in a thread of the bot's own
process held the interpreter's lock while the first citizens' buttons and numbers waited: on
bench/throughput.py the median reply went from 11 ms to 103 ms. A child process (spawned, not
forked: the bot runs threads) does both on another core and sends back plain arrays
(:class:`bot.classifier.Fitted`, about 8 MB pickled), which a thread here hands to the
component; the bot's process never imports scikit-learn. Until then a message that needs the
classifier trains it in-process as before (:meth:`Understanding.warm`), so nothing is lost if
the child fails.

A trained classifier is kept on disk (:class:`ModelCache`, ``var/models``) under a key of
everything it depends on: the next start of the same content and code (a restart, a worker
started again, a test's server) loads it in milliseconds instead of spending 3-7 s of a core
on the child. Plain arrays and JSON: nothing is unpickled from disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
from importlib import metadata
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import numpy as np

import bot.classifier
import bot.normalise
import bot.textnorm
import bot.typed
import bot.understanding
from app.deathsignal import request_death_signal
from bot.classifier import Fitted, Recipe, fit
from bot.folders import private_folder
from bot.understanding import Understanding

#: The modules whose code a trained model depends on: they make the training set (labels,
#: normalised texts) and train on it.
TRAINING_CODE = (bot.understanding, bot.normalise, bot.textnorm, bot.typed, bot.classifier)

log = logging.getLogger(__name__)


class Training:
    """One training of ``understanding``'s classifier in a child process; :meth:`close`
    ends the child if it is still at work (a process that stops early wastes no CPU)."""

    def __init__(self, understanding: Understanding, cache: ModelCache | None = None):
        self._understanding = understanding
        self._cache = cache
        self._key = ""
        self._process: BaseProcess | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.done = threading.Event()

    def start(self) -> None:
        if self._understanding.ready:
            self.done.set()
            return
        if self._cache is not None:
            # The fingerprint, not the training set: gathering that takes 1-2 s at every
            # start, and a kept model needs none of it.
            self._key = self._cache.key(self._understanding.fingerprint())
            if self._cache.install(self._understanding, self._key):
                self.done.set()
                return
        texts, labels = self._understanding.training
        self._understanding.expect(self.done)
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
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
        # Installing the result opens no file: what unpickling and install() use (numpy,
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
                if self._cache is not None:
                    self._cache.save(self._key, fitted)
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


def _train(send: Connection, texts: list[str], labels: list[str], parent: int) -> None:
    """The child's work: train, send the arrays back. A bot killed meanwhile (SIGKILL, as
    bench/faults.py does) takes its training with it: it trained on for seconds of CPU with
    nobody to use it, then printed a traceback into the bot's log (a broken pipe)."""
    request_death_signal(signal.SIGKILL)
    if os.getppid() != parent:
        return  # gone before the request was made
    try:
        send.send(fit(texts, labels))
    except BrokenPipeError:
        pass  # the bot stopped meanwhile (close(), or a kill)
    finally:
        send.close()


class ModelCache:
    """Trained classifiers in ``directory``, one file per key (:meth:`key`). Loading fails
    softly: an unreadable, foreign or stale file means training again, never a wrong model."""

    def __init__(self, directory: Path):
        self.directory = directory

    @staticmethod
    def key(fingerprint: str) -> str:
        """A digest of what the trained model depends on: the content it learns from (its
        :meth:`~bot.understanding.Understanding.fingerprint`), the code that makes the
        training set of it and the classifier's, and the numeric libraries' versions."""
        digest = hashlib.sha256()
        for part in (
            fingerprint,
            *(Path(str(m.__file__)).read_text(encoding="utf-8") for m in TRAINING_CODE),
            *(_version(name) for name in ("scikit-learn", "scipy", "numpy")),
        ):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()[:32]

    def _path(self, key: str) -> Path:
        return self.directory / f"understanding-{key}.npz"

    def load(self, key: str) -> Fitted | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                return _from_arrays(dict(stored))
        except Exception as exc:  # any damage: train again
            log.warning("understanding cache %s unreadable (%s); training again", path, exc)
            return None

    def install(self, understanding: Understanding, key: str | None = None) -> bool:
        """Give ``understanding`` the classifier kept for its training set (``key``, computed
        when not given), if there is one; whether there was."""
        kept = self.load(key or self.key(understanding.fingerprint()))
        if kept is not None:
            understanding.install(kept)
        return kept is not None

    def save(self, key: str, fitted: Fitted) -> None:
        """Write atomically (several workers may save the same key at once)."""
        name = ""
        try:
            private_folder(self.directory)
            handle, name = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                np.savez(out, **_to_arrays(fitted))  # type: ignore[arg-type]  # numpy's stub
            os.replace(name, self._path(key))
        except (OSError, TypeError, ValueError) as exc:
            log.warning("understanding cache not written (%s)", exc)
            if name:
                with contextlib.suppress(OSError):
                    os.unlink(name)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def _to_arrays(fitted: Fitted) -> dict[str, np.ndarray[Any, Any]]:
    """Fields as arrays: an array as itself, a tuple of arrays as numbered arrays, the rest
    (the recipe, strings, vocabularies) in one JSON document."""
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    plain: dict[str, Any] = {}
    for f in dataclasses.fields(fitted):
        value = getattr(fitted, f.name)
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        elif isinstance(value, tuple) and value and all(isinstance(v, np.ndarray) for v in value):
            plain[f.name] = {"arrays": len(value)}
            for i, v in enumerate(value):
                arrays[f"{f.name}.{i}"] = v
        elif isinstance(value, Recipe):
            plain[f.name] = {"recipe": dataclasses.asdict(value)}
        else:
            plain[f.name] = {"json": value}
    arrays["__plain__"] = np.array(json.dumps(plain, ensure_ascii=False))
    return arrays


def _from_arrays(stored: dict[str, np.ndarray[Any, Any]]) -> Fitted:
    plain = json.loads(str(stored.pop("__plain__")))
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Fitted):
        if f.name in stored:
            values[f.name] = stored[f.name]
            continue
        entry = plain[f.name]  # a field the file lacks: KeyError, train again
        if "arrays" in entry:
            values[f.name] = tuple(stored[f"{f.name}.{i}"] for i in range(entry["arrays"]))
        elif "recipe" in entry:
            recipe: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in entry["recipe"].items()
            }
            values[f.name] = Recipe(**recipe)
        else:
            values[f.name] = _tuples(entry["json"])
    return Fitted(**values)


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples a frozen dataclass holds (one level: a tuple of
    strings or of vocabularies)."""
    return tuple(value) if isinstance(value, list) else value
