"""The job verbs against a host that lies: hostile job folders, names, logs and error lines.

A rented host controls every byte of its jobs folder. Job folders whose names are not gputui ids
are ignored; names, log lines and error lines reach the terminal with their control characters
shown escaped (``gputui logs --raw`` alone passes them through); an empty job reference names no
job; ``--tail`` reads only the end of a log, however long its lines.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cli_helpers import gputui
from hostile import HOSTILE_TEXT, on_terminal, plant, shows_raw_control
from sshd import SshServer
from textual.geometry import Region
from textual.widgets import Static
from waiting import pilot_until as until

from transfer.hosts import HostProfile, HostStore
from transfer.jobs.state import JobMeta
from tui.app import GputuiApp
from tui.screens.log_screen import LogScreen
from tui.widgets.job_log import JobLogView
from tui.widgets.jobs_pane import JobsPane
from tui.widgets.logs_pane import LogsPane

pytestmark = pytest.mark.usefixtures("job_env")
OSC52 = HOSTILE_TEXT["osc52"]


@pytest.fixture
def host(fresh_sshd: SshServer, workdir: Path) -> HostProfile:
    """``gpu1``: a host of this test alone, so that planted programs meet no other test."""
    fresh_sshd.trust()
    profile = fresh_sshd.profile("gpu1", workdir=str(workdir))
    HostStore().upsert(profile)
    return profile


def planted_job(
    root: Path, folder: str, name: str, log: bytes = b"", command: str = "true"
) -> Path:
    """An ended job's folder written straight into the host's jobs folder, as a hostile host
    may."""
    job = root / folder
    job.mkdir(parents=True)
    meta = JobMeta(id=folder, name=name, command=command, workdir="/tmp", host="gpu1",
                   created_at=time.time() - 10)
    (job / "meta.json").write_text(meta.to_json_line() + "\n", encoding="utf-8")
    (job / "log").write_bytes(log)
    (job / "started_at").write_text(f"{time.time() - 9:.0f}\n")
    (job / "ended_at").write_text(f"{time.time() - 8:.0f}\n")
    (job / "exit_code").write_text("0\n")
    return job


def test_jobs_shows_hostile_names_escaped_and_ignores_folders_that_are_not_ids(
    host: HostProfile, jobs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, text in HOSTILE_TEXT.items():
        planted_job(jobs_root, f"named-{key.replace('_', '-')}", text)
    planted_job(jobs_root, f"evil{OSC52}", "folder-with-escapes")
    planted_job(jobs_root, "Upper-Case", "folder-not-an-id")
    planted_job(jobs_root, "-dash-first", "folder-dash-first")
    planted_job(jobs_root, "x" * 65, "folder-too-long")

    code, out, err = on_terminal("jobs", "gpu1")
    assert code == 0, err
    assert not shows_raw_control(out) and not shows_raw_control(err)
    # A dumb terminal is 80 columns wide: the start of each name shows, escaped.
    for shown in ("\\x1b]52;c;", "\\x1b[2J", "\\x9b31m", "\\x07"):
        assert shown in out
    assert "[link=https://" in out  # shown as text, not made a link
    for name in ("folder-with-escapes", "folder-not-an-id", "folder-dash-first",
                 "folder-too-long"):
        assert name not in out

    code, out, _ = gputui(capsys, "jobs", "gpu1", "--json")
    listed = json.loads(out)
    assert sorted(job["id"] for job in listed) == sorted(
        f"named-{key.replace('_', '-')}" for key in HOSTILE_TEXT
    )
    assert not shows_raw_control(out)  # the C1 CSI is a JSON escape, not the raw character
    # A folder that is not a job id is used by no command, not even through its name.
    code, _, err = gputui(capsys, "logs", "gpu1", "folder-not-an-id")
    assert code == 1 and "no job 'folder-not-an-id'" in err


def test_an_empty_job_reference_names_no_job(
    host: HostProfile, jobs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = gputui(capsys, "run", "gpu1", "--name", "only", "--", "sleep 30")
    job = out.strip()
    for verb in ("stop", "logs", "attach", "resume"):
        code, out, err = gputui(capsys, verb, "gpu1", "")
        assert code != 0 and out == "", verb
        assert err.count("\n") == 1 and "empty" in err, err
    _, out, _ = gputui(capsys, "jobs", "gpu1", "--json")
    assert [(j["id"], j["state"]) for j in json.loads(out)] == [(job, "running")]
    assert not (jobs_root / job / "stop").exists()
    gputui(capsys, "stop", "gpu1", job, "--grace", "0")


def test_log_lines_are_escaped_unless_raw(host: HostProfile, jobs_root: Path) -> None:
    lines = [f"{key}:{text}" for key, text in HOSTILE_TEXT.items()]
    log = "".join(f"{line}\n" for line in ["plain\twith a tab", *lines]).encode()
    planted_job(jobs_root, "noisy-abcde", "noisy", log=log)

    for extra in ([], ["--tail", "5"], ["-f"]):
        code, out, err = on_terminal("logs", "gpu1", "noisy", *extra)
        assert code == 0, err
        assert not shows_raw_control(out) and not shows_raw_control(err), extra
        assert "osc52:\\x1b]52;c;cHduZWQ=\\x07" in out and "c1_csi:\\x9b31m" in out
        assert HOSTILE_TEXT["markup"] in out
    assert "plain\twith a tab\n" in on_terminal("logs", "gpu1", "noisy")[1]

    code, out, _ = on_terminal("logs", "gpu1", "noisy", "--raw")
    assert code == 0 and out.splitlines() == ["plain\twith a tab", *lines]


def test_error_lines_from_the_host_are_escaped(host: HostProfile, fresh_sshd: SshServer) -> None:
    # A host whose tmux fails with an error line that writes to the clipboard (OSC 52).
    plant(fresh_sshd, "tmux", f"printf '%s\\n' 'no server {OSC52}{HOSTILE_TEXT['c1_csi']}' >&2\n"
          "exit 1\n")
    code, out, err = on_terminal("run", "gpu1", "--", "true")
    assert code == 1 and out == ""
    assert not shows_raw_control(err)
    assert err.startswith("gputui: could not start") and err.count("\n") == 1
    assert "no server \\x1b]52;c;cHduZWQ=\\x07\\x9b31m" in err

    # A host whose shell fails every command the same way: the listing's error line.
    plant(fresh_sshd, "sh", f"printf '%s\\n' 'broken {OSC52}' >&2\nexit 3\n")
    code, out, err = on_terminal("jobs", "gpu1")
    assert code == 1 and not shows_raw_control(out + err)
    assert "broken \\x1b]52;c;cHduZWQ=\\x07" in err


def test_tail_of_a_huge_log_without_newlines_reads_only_its_end(
    host: HostProfile, jobs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = planted_job(jobs_root, "huge-abcde", "huge")
    size = 200 * 1024 * 1024
    with (job / "log").open("wb") as f:  # sparse: zeros the host reads and would send
        f.seek(size - 4)
        f.write(b"END!")
    started = time.monotonic()
    code, out, err = gputui(capsys, "logs", "gpu1", "huge", "--tail", "3")
    took = time.monotonic() - started
    assert code == 0, err
    assert took < 5, f"--tail took {took:.1f} s"
    assert out.endswith("END!\n") and out.count("\n") == 1
    assert out.startswith("…")  # the line began long before: shown cut
    assert len(out) <= 5 * 1024 * 1024  # at most 1 MiB of the line, escaped

    # A few short lines after the giant one: those lines, and nothing of the giant.
    with (job / "log").open("ab") as f:
        f.write(b"\none\ntwo\nthree\n")
    code, out, _ = gputui(capsys, "logs", "gpu1", "huge", "--tail", "2")
    assert (code, out) == (0, "two\nthree\n")


async def test_the_app_shows_hostile_names_commands_and_log_lines_safely(
    jobs_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    log = "".join(f"{line}\n" for line in ["ok", *HOSTILE_TEXT.values()]).encode()
    name = f"evil{OSC52}{HOSTILE_TEXT['c1_csi']}"
    planted_job(jobs_root, "hostile-abcde", name, log=log, command=f"train {OSC52}\x9b2J")
    app = GputuiApp(start_host="local")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(app.screen.query_one(JobsPane).jobs) == 1)
        jobs = app.screen.query_one(JobsPane)
        assert not shows_raw_control(str(jobs.table.get_cell("hostile-abcde", "name")))
        logs = app.screen.query_one("#logs-pane-view", JobLogView)
        await until(pilot, lambda: len(logs.log_lines.lines) == 6)
        # Escape sequences (ESC and one-character C1 forms) go; other controls show as �.
        assert list(logs.log_lines.lines) == ["ok", "", "", "", "\N{REPLACEMENT CHARACTER}",
                                              HOSTILE_TEXT["markup"]]
        subtitle = str(app.screen.query_one(LogsPane).border_subtitle)
        assert "evil\\x1b]52" in subtitle and not shows_raw_control(subtitle)

        jobs.table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        title = app.screen.query_one("#log-screen-title", Static)
        drawn = "".join(strip.text for strip in title.render_lines(Region(0, 0, 120, 1)))
        assert "train \\x1b]52;c;cHduZWQ=\\x07\\x9b2J" in drawn
        assert not shows_raw_control(drawn)
