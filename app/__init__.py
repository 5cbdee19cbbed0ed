"""The application: the one place where the core, the store and the channels are wired.

``bot/`` (the pure core) and ``storage/`` know nothing of this package; ``handlers/`` (the
channel adapters) know nothing of it either. Here the environment is read
(:mod:`app.settings`), the pieces are built (:mod:`app.runtime`), the channels are served
(:mod:`app.server`, :mod:`app.workers`) and the command line lives (:mod:`app.cli`).
"""
