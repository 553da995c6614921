"""Deprecated path of :mod:`nas.contrib.nb201` (NAS-Bench-201 tables), kept for one release: import from there."""

from __future__ import annotations

import sys

from nas.contrib import nb201 as _moved

sys.modules[__name__] = _moved  # the same module object: every name, private ones too
