"""Who runs a trial: the worker's identity, ``host:pid``.

Whether a worker is still alive is not guessed from this machine's process table (a pid is reused,
and a worker on another host cannot be seen): workers that share a study beat (see
:class:`nas.store.Heartbeat`), and a local worker known dead is named by the one that replaces it.
"""

from __future__ import annotations

import os
import socket


def this_worker() -> str:
    """What a trial records as its worker: ``host:pid`` of the process that runs it (asks it, in ask/tell)."""
    return f"{socket.gethostname()}:{os.getpid()}"
