"""How a host's last test reads in the list."""

from __future__ import annotations

from tui_fakes import FakeGpu, FakeReport

from transfer.errors import AuthenticationFailed, HostKeyChanged, HostKeyUnknown
from tui.host_checks import status_from_error
from tui.host_status import REASON_WIDTH, HostStatus


def test_untested_host_shows_dashes() -> None:
    status = HostStatus()
    assert (status.reachability(), status.gpu_summary()) == ("—", "—")


def test_report_gives_latency_and_grouped_gpus() -> None:
    gpus = [FakeGpu("NVIDIA H100 80GB HBM3", 81559), FakeGpu("NVIDIA H100 80GB HBM3", 81559),
            FakeGpu("Tesla T4", 15360)]
    status = HostStatus.from_report(FakeReport("x", 41.6, gpus))
    assert status.reachability() == "✓ 42 ms"
    assert status.gpu_summary() == "2× H100 80GB HBM3, Tesla T4 (15 GiB)"
    assert HostStatus.from_report(FakeReport("x", 1.0, [])).gpu_summary() == "none"


def test_key_errors_get_their_own_states() -> None:
    unknown = status_from_error(HostKeyUnknown("x", "SHA256:abc", "ssh-ed25519"))
    changed = status_from_error(HostKeyChanged("x", "SHA256:abc", "ssh-ed25519"))
    assert (unknown.state, unknown.reachability()) == ("key-unknown", "key?")
    assert (changed.state, changed.reachability()) == ("key-changed", "✗ KEY CHANGED")


def test_failures_show_the_reason_short() -> None:
    status = status_from_error(AuthenticationFailed("x (root@h:22): permission denied (publickey)"))
    assert status.reachability() == "✗ permission denied (publickey)"
    long = status_from_error(AuthenticationFailed("x: " + "very long reason " * 10))
    assert len(long.reachability()) == 2 + REASON_WIDTH and long.reachability().endswith("…")
    assert status_from_error(ValueError("boom")).message == "ValueError: boom"
