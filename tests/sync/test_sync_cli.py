"""``gputui push`` and ``gputui pull`` as a person and a script use them."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from hostile import HOSTILE_TEXT
from sshd import SshServer, free_port
from sync_helpers import saved_profile

from transfer.hosts import HostProfile, HostStore
from tui.cli import main


@pytest.fixture
def saved_box(sshd_server: SshServer, tmp_path: Path) -> HostProfile:
    return saved_profile(sshd_server, tmp_path / "workdir")


def test_push_defaults_to_this_folder_and_the_workdir(
    saved_box: HostProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text("print('train')\n")
    monkeypatch.chdir(project)
    assert main(["push", "box"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "workdir" / "train.py").read_text() == "print('train')\n"
    assert out.startswith("pushed 1 files (15 B)") and "0 unchanged" in out

    assert main(["push", "box", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["files_sent"] == 0 and result["files_skipped"] == 1


def test_pull_defaults_to_a_folder_named_like_the_source(
    saved_box: HostProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ckpt = tmp_path / "workdir" / "runs" / "ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter.bin").write_bytes(os.urandom(1000))
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["pull", "box", "runs/ckpt", "--verify"]) == 0
    assert (here / "ckpt" / "adapter.bin").read_bytes() == (ckpt / "adapter.bin").read_bytes()
    out = capsys.readouterr().out
    assert out.startswith("pulled 1 files") and "verified 1 (sha256)" in out


def test_dry_run_lists_the_plan(
    saved_box: HostProfile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "new\nfile").write_bytes(b"12345")
    (tmp_path / "workdir" / "dest").mkdir(parents=True)
    (tmp_path / "workdir" / "dest" / "old").write_bytes(b"x")
    assert main(["push", "box", str(source), "dest", "--dry-run", "--delete"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "would send 1 files (5 B); skip 0 unchanged (0 B); delete 1"
    assert "  send    new\\nfile" in out and "  delete  old" in out
    assert (tmp_path / "workdir" / "dest" / "old").exists()
    assert not (tmp_path / "workdir" / "dest" / "new\nfile").exists()


def test_unreachable_host_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    HostStore().upsert(HostProfile(name="gone", hostname="127.0.0.1", port=free_port()))
    code = main(["push", "gone", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("gputui: cannot reach gone")


def test_bad_rate_is_a_usage_error(
    saved_box: HostProfile, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push", "box", ".", "--bwlimit", "fast"]) == 2
    assert "not a rate" in capsys.readouterr().err


def test_missing_source_is_one_line(
    saved_box: HostProfile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push", "box", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"gputui: nothing to push at {tmp_path / 'nope'}\n"
    assert main(["pull", "box", "no/such/thing", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err == f"gputui: nothing to pull at box:{tmp_path}/workdir/no/such/thing\n"


def test_file_names_in_the_progress_are_shown_never_obeyed() -> None:
    """A host picks the file names: markup in one is shown as text (no clickable link), and
    escape sequences are shown escaped."""
    from rich.console import Console

    from transfer.sync.events import FileProgress, Progress
    from tui.cli.sync import _ProgressView

    def shown(name: str) -> str:
        view = _ProgressView(enabled=True)
        view._show(Progress("sending", 0, 1, 10, 100, 1.0, None, FileProgress(name, 10, 100)))
        try:
            screen = io.StringIO()
            console = Console(file=screen, force_terminal=True, width=300)
            console.print(view._progress.make_tasks_table(view._progress.tasks))
        finally:
            view.stop()
        return screen.getvalue()

    markup = shown("[link=https://evil.example]x[/link]")
    assert "[link=https://evil.example]x[/link]" in markup and "\x1b]8;" not in markup
    escapes = shown(HOSTILE_TEXT["osc52"] + HOSTILE_TEXT["c1_csi"])
    assert "\\x1b]52" in escapes and "\x1b]52" not in escapes and "\x9b" not in escapes
