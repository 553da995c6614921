"""Deprecated path of :mod:`nas.contrib.fidelity` (fidelity checks), kept for one release: import from there."""

from __future__ import annotations

import sys

from nas.contrib import fidelity as _moved

sys.modules[__name__] = _moved  # the same module object: every name, private ones too
