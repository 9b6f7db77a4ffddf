"""Find a person in the local roster by name in any script, document number or scanned code."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sync.normalize import document_key, name_tokens, search_keys


@dataclass
class RosterIndex:
    """An in-memory index over decrypted roster people, rebuilt when the store is unlocked."""

    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    _tokens: dict[str, set[str]] = field(default_factory=dict)
    _documents: dict[str, set[str]] = field(default_factory=dict)

    def add(self, person: dict[str, Any]) -> None:
        pid = person["id"]
        self.people[pid] = person
        self._tokens[pid] = set(search_keys(person))
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
            for pid, tokens in self._tokens.items():
                score = _score(wanted, tokens)
                if score:
                    hits[pid] = max(hits.get(pid, 0), score)
        ranked = sorted(hits, key=lambda pid: (-hits[pid], self.people[pid].get("full_name", "")))
        return [self.people[pid] for pid in ranked[:limit]]


def _scanned_id(text: str) -> str:
    """A scanned code carries the person's id, bare or as ``muster:person:<id>``."""
    candidate = text.rsplit(":", 1)[-1]
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        return ""


def _score(wanted: list[str], tokens: set[str]) -> float:
    """Every query token must match a token exactly (10) or as a prefix (5)."""
    total = 0.0
    for w in wanted:
        if w in tokens:
            total += 10
        elif len(w) >= 2 and any(t.startswith(w) for t in tokens):
            total += 5
        else:
            return 0.0
    return total / len(wanted)
