"""Fuzzy filtering of the host list, the way sshs and lazyssh do it.

Each word of the query must match (fuzzily: letters in order, gaps allowed) one of the host's
name, address, provider or tags; hosts are ranked by their total score, best first, and keep
their file order when tied.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.fuzzy import Matcher

from transfer.hosts import HostProfile


def searchable_fields(host: HostProfile) -> list[str]:
    return [host.name, host.address, host.hostname, host.provider or "", *host.tags]


def filter_hosts(hosts: Iterable[HostProfile], query: str) -> list[HostProfile]:
    """Hosts matching every word of ``query``; all hosts, in order, for an empty query."""
    words = query.split()
    hosts = list(hosts)
    if not words:
        return hosts
    matchers = [Matcher(word) for word in words]
    ranked: list[tuple[float, int, HostProfile]] = []
    for index, host in enumerate(hosts):
        fields = searchable_fields(host)
        total = 0.0
        for matcher in matchers:
            best = max(matcher.match(field) for field in fields)
            if best <= 0:
                break
            total += best
        else:
            ranked.append((-total, index, host))
    return [host for _score, _index, host in sorted(ranked, key=lambda item: item[:2])]
