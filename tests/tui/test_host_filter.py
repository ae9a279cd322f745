"""Fuzzy filtering of the host list."""

from __future__ import annotations

from transfer.hosts import HostProfile, local_host
from tui.host_filter import filter_hosts

HOSTS = [
    local_host(),
    HostProfile(name="a100-box", hostname="203.0.113.7", user="ubuntu", provider="lambda",
                tags=["a100", "spot"]),
    HostProfile(name="h100-pod", hostname="h100.example.com", provider="runpod", tags=["h100"]),
    HostProfile(name="lab-3090", hostname="10.1.2.3", tags=["home"]),
]


def names(query: str) -> list[str]:
    return [host.name for host in filter_hosts(HOSTS, query)]


def test_empty_query_keeps_every_host_in_order() -> None:
    assert names("") == names("   ") == ["local", "a100-box", "h100-pod", "lab-3090"]


def test_letters_in_order_with_gaps_match() -> None:
    assert names("hpd") == ["h100-pod"]


def test_matches_address_provider_and_tags() -> None:
    assert names("203.0") == ["a100-box"]
    assert names("runpod") == ["h100-pod"]
    assert names("spot") == ["a100-box"]
    assert names("ubuntu@") == ["a100-box"]


def test_every_word_must_match() -> None:
    assert names("lambda spot") == ["a100-box"]
    assert names("lambda h100") == []


def test_better_matches_come_first() -> None:
    # "lab" is a prefix of lab-3090's name and only a scattered match in "lambda".
    assert names("lab") == ["lab-3090", "a100-box"]
