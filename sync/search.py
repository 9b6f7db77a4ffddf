"""Find a person in the local roster by name in any script, document number or scanned code."""

from __future__ import annotations

import bisect
import uuid
from dataclasses import dataclass, field
from typing import Any

from sync.normalize import document_key, name_tokens, search_keys


@dataclass
class RosterIndex:
    """An in-memory index over decrypted roster people, rebuilt when the store is unlocked.

    Name tokens map to the people who carry them; a sorted list of the distinct tokens answers
    prefix queries with a binary search, so a query costs what it matches, not the roster size.
    """

    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    _by_token: dict[str, set[str]] = field(default_factory=dict)
    _tokens: list[str] = field(default_factory=list)
    _sorted: bool = True
    _documents: dict[str, set[str]] = field(default_factory=dict)

    def add(self, person: dict[str, Any]) -> None:
        pid = person["id"]
        self.people[pid] = person
        for token in search_keys(person):
            holders = self._by_token.get(token)
            if holders is None:
                self._by_token[token] = {pid}
                self._tokens.append(token)
                self._sorted = False
            else:
                holders.add(pid)
        key = document_key(person.get("document_number") or "")
        if key:
            self._documents.setdefault(key, set()).add(pid)

    def find(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """People matching ``query``, best first: exact id or document, then every name token."""
        text = query.strip()
        if not text:
            return []
        hits: dict[str, float] = {}
        scanned = _scanned_id(text)
        if scanned in self.people:
            hits[scanned] = 100.0
        for pid in self._documents.get(document_key(text), ()):
            hits[pid] = max(hits.get(pid, 0), 90.0)
        wanted = name_tokens(text)
        if wanted:
            for pid, score in self._score(wanted).items():
                hits[pid] = max(hits.get(pid, 0), score)
        ranked = sorted(hits, key=lambda pid: (-hits[pid], self.people[pid].get("full_name", "")))
        return [self.people[pid] for pid in ranked[:limit]]

    def _score(self, wanted: list[str]) -> dict[str, float]:
        """Every query token must match a token exactly (10) or as a prefix (5); the mean wins."""
        total: dict[str, float] | None = None
        for w in wanted:
            scores: dict[str, float] = {}
            for pid in self._by_token.get(w, ()):
                scores[pid] = 10.0
            if len(w) >= 2:
                for token in self._prefixed(w):
                    for pid in self._by_token[token]:
                        scores.setdefault(pid, 5.0)
            if total is None:
                total = scores
            else:
                total = {pid: total[pid] + s for pid, s in scores.items() if pid in total}
            if not total:
                return {}
        return {pid: s / len(wanted) for pid, s in (total or {}).items()}

    def _prefixed(self, prefix: str) -> list[str]:
        if not self._sorted:
            self._tokens.sort()
            self._sorted = True
        start = bisect.bisect_left(self._tokens, prefix)
        out = []
        for token in self._tokens[start:]:
            if not token.startswith(prefix):
                break
            if token != prefix:
                out.append(token)
        return out


def _scanned_id(text: str) -> str:
    """A scanned code carries the person's id, bare or as ``muster:person:<id>``."""
    candidate = text.rsplit(":", 1)[-1]
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        return ""
