"""'Did you mean …?' for mistyped keys."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggestions(word: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Likely intended candidates for `word`: those that extend it ('price' → 'price_per_seat')
    first, then look-alikes ('acceptance_rat' → 'acceptance_rate')."""
    pool = list(candidates)
    extending = [c for c in pool if c.startswith(word) and c != word]
    alike = difflib.get_close_matches(word, pool, n=limit, cutoff=0.6)
    return list(dict.fromkeys(extending + alike))[:limit]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'a' or 'b'?' or '' when nothing is close."""
    near = suggestions(word, candidates)
    return f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
