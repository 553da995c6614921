"""Deprecated path of :mod:`nas.estimators.zero_cost` (zero-cost proxies), kept for one release: import from there."""

from __future__ import annotations

import sys

from nas.estimators import zero_cost as _moved

sys.modules[__name__] = _moved  # the same module object: every name, private ones too
