"""From pairwise links to people, never gluing together records that cannot be one person.

Rules:
1. Links are taken strongest first (weight descending, then ids, so the result is deterministic).
   A link joins the two clusters its records are in, unless some record of one cluster and some
   record of the other fire a cannot-link rule (:mod:`careweave.mpi.rules` rule 1): every new link
   is checked against the whole of both clusters, so a chain A~B~C can never put A and C together
   when A and C are twins or carry different verified NHS numbers.
2. A refused link is reported with the pair of records that blocked it and the rules they fired,
   for the review queue; the clusters it would have joined stay apart.
3. Every record given is in exactly one cluster (a record without links is a cluster of one).
   Clusters list their members sorted, and the clusters are sorted by their first member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from careweave.mpi.compare import compare
from careweave.mpi.record import PatientRecord
from careweave.mpi.rules import RULES, RuleKind

__all__ = ["Clustering", "Link", "Refusal", "cluster", "conflicts"]


@dataclass(frozen=True, slots=True)
class Link:
    """Two record ids the matcher would link, with the match weight of the pair."""

    left: str
    right: str
    weight: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """A link refused because ``left_member`` and ``right_member`` cannot be one person."""

    link: Link
    left_member: str
    right_member: str
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Clustering:
    """People as clusters of record ids (rule 3), and the links that were refused (rule 2)."""

    clusters: tuple[tuple[str, ...], ...]
    refused: tuple[Refusal, ...]

    def membership(self) -> dict[str, int]:
        """Record id -> index of its cluster."""
        return {member: index for index, members in enumerate(self.clusters) for member in members}


def conflicts(a: PatientRecord, b: PatientRecord) -> tuple[str, ...]:
    """The cannot-link rules two records fire (empty when they may be one person)."""
    return tuple(code for code in compare(a, b).rules if RULES[code].kind is RuleKind.CANNOT_LINK)


Conflicts = Callable[[PatientRecord, PatientRecord], tuple[str, ...]]


def _blocking_pair(
    left: list[str], right: list[str], records: Mapping[str, PatientRecord], check: Conflicts
) -> tuple[str, str, tuple[str, ...]] | None:
    for x in left:
        for y in right:
            fired = check(records[x], records[y])
            if fired:
                return x, y, fired
    return None


def cluster(
    records: Mapping[str, PatientRecord], links: Iterable[Link], check: Conflicts = conflicts
) -> Clustering:
    """Clusters of the records joined by the links (rules 1-3). Links naming unknown records
    raise KeyError."""
    root: dict[str, str] = {rid: rid for rid in records}
    members: dict[str, list[str]] = {rid: [rid] for rid in records}
    refused: list[Refusal] = []

    def find(rid: str) -> str:
        while root[rid] != rid:
            root[rid] = root[root[rid]]
            rid = root[rid]
        return rid

    for link in sorted(links, key=lambda k: (-k.weight, min(k.left, k.right), max(k.left, k.right))):
        a, b = find(link.left), find(link.right)
        if a == b:
            continue
        blocked = _blocking_pair(members[a], members[b], records, check)
        if blocked is not None:
            refused.append(Refusal(link, *blocked))
            continue
        if len(members[a]) < len(members[b]):
            a, b = b, a
        root[b] = a
        members[a].extend(members.pop(b))
    clusters = sorted(tuple(sorted(m)) for m in members.values())
    return Clustering(tuple(clusters), tuple(refused))
