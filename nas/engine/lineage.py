"""The parent-to-child tree of a search whose strategy breeds children from trained parents."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from nas.core.records import TrialRecord


def describe(record: TrialRecord) -> str:
    """One line for a trial: its number, outcome and what it inherited from its parent."""
    outcome = f"val {record.value:.4f}" if record.value is not None else str(record.state)
    parts = [f"#{record.number} {outcome}"]
    if record.inheritance is not None:
        parts.append(record.inheritance.describe())
    return ", ".join(parts)


def ancestry(history: Sequence[TrialRecord], number: int) -> list[int]:
    """Trial numbers from the first ancestor down to ``number``."""
    parents = {r.number: r.parent for r in history}
    chain = [number]
    while parents.get(chain[-1]) is not None and parents[chain[-1]] not in chain:
        chain.append(parents[chain[-1]])  # type: ignore[arg-type]
    return chain[::-1]


def lineage_text(history: Sequence[TrialRecord]) -> str:
    """Markdown: a summary, the best trial's ancestry, and the tree of every trial that has children
    (trials with neither parent nor children are only counted)."""
    numbers = {r.number for r in history}
    children: dict[int, list[TrialRecord]] = defaultdict(list)
    for r in history:
        if r.parent is not None and r.parent in numbers:
            children[r.parent].append(r)
    roots = [r for r in history if (r.parent is None or r.parent not in numbers) and children.get(r.number)]
    bred = sum(r.parent is not None for r in history)
    lonely = sum((r.parent is None or r.parent not in numbers) and not children.get(r.number) for r in history)
    lines = [f"{len(history)} trials, {bred} bred from a parent; {len(roots)} lineages shown, {lonely} trials without parent or child omitted."]
    done = [r for r in history if r.value is not None]
    if done:
        best = max(done, key=lambda r: r.value)  # type: ignore[arg-type, return-value]
        lines.append(f"Best #{best.number} ({best.value:.4f}) descends from: " + " -> ".join(f"#{n}" for n in ancestry(history, best.number)))
    lines += ["", "```"]
    stack: list[tuple[TrialRecord, str, str]] = [(r, "", "") for r in reversed(roots)]
    while stack:  # depth-first, without recursion: a hill climb's chain is as deep as its rounds
        record, lead, indent = stack.pop()
        lines.append(lead + describe(record))
        kids = children.get(record.number, [])
        for i, kid in reversed(list(enumerate(kids))):
            last = i == len(kids) - 1
            stack.append((kid, indent + ("└── " if last else "├── "), indent + ("    " if last else "│   ")))
    lines.append("```")
    return "\n".join(lines)
