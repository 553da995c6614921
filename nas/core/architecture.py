"""Architecture: a space name plus a flat sample of primitives, with its canonical key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Architecture:
    """A point of a search space: storable as Optuna params, JSON round-trippable, diffable."""

    space: str
    sample: Mapping[str, Any] = field(default_factory=dict)
    key: str = ""

    def to_json(self) -> str:
        return json.dumps({"space": self.space, "key": self.key, "sample": dict(self.sample)}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        data = json.loads(text)
        return cls(space=data["space"], sample=dict(data["sample"]), key=data.get("key", ""))

    def diff(self, other: Architecture) -> dict[str, tuple[Any, Any]]:
        """Dimensions whose values differ: ``{name: (self_value, other_value)}``."""
        names = list(dict.fromkeys([*self.sample, *other.sample]))
        return {n: (self.sample.get(n), other.sample.get(n)) for n in names if self.sample.get(n) != other.sample.get(n)}

    def __hash__(self) -> int:
        return hash((self.space, self.key or json.dumps(dict(self.sample), sort_keys=True)))

    def __str__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.sample.items())
        return f"{self.space}[{self.key[:8]}]({body})"
