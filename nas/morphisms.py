"""Deprecated path of :mod:`nas.inheritance.morphisms` (network morphism primitives), kept for one release: import from there."""

from __future__ import annotations

import sys

from nas.inheritance import morphisms as _moved

sys.modules[__name__] = _moved  # the same module object: every name, private ones too
