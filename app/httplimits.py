"""The webhook server's deadlines and connection cap, as settings (:mod:`app.connections`
enforces them). Apart from the guard, so that reading the settings does not import aiohttp:
every command of ``python -m bot`` reads them, and most never serve (``migrate``, ``stats``:
0.25 s of CPU each)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Deadlines and the connection cap of the webhook server (README, "Environment")."""

    #: Open connections per worker process (clamped by :func:`connection_cap`).
    max_connections: int = 512
    #: Seconds a connection has to deliver a request's headers (after opening, or after its
    #: previous answer). Webhooks come from the platforms' servers or from the local proxy,
    #: all at once: a few seconds is generous.
    header_timeout: float = 5.0
    #: Seconds an answered connection may wait for its next request (as nginx's default
    #: upstream keep-alive is 60 s, so that the proxy closes first).
    keepalive_timeout: float = 75.0
    #: Seconds a request's body (at most 1 MiB) has to arrive once the headers are in.
    body_timeout: float = 10.0


DEFAULT_LIMITS = HttpLimits()
