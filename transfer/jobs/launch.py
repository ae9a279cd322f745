"""Starting a detached job: a job folder on the host, then the wrapper in tmux (or setsid nohup).

Two round trips: one creates the folder and says what the host has (tmux, the git commit of the
work folder), one writes the files and starts the wrapper. The command, name, work folder and
environment activation travel as single-quoted arguments that the host's shell unquotes exactly
once, and land in files; the wrapper reads them from there.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass

from trainers.protocol.jobdir import COMMAND, ENV, WORKDIR, WRAPPER_SCRIPT
from transfer.errors import GputuiError
from transfer.jobs.host import HostJobs, sh_command
from transfer.jobs.index import remember_job
from transfer.jobs.state import JobMeta
from transfer.scripts import load

#: The tmux server that jobs run in, as a socket path on the host (default: the host's own
#: default server, so that ``tmux ls`` there lists them).
TMUX_SOCKET_ENV = "GPUTUI_TMUX_SOCKET"

#: Files bigger than this go over SFTP rather than on the command line.
ARGUMENT_LIMIT = 64 * 1024
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_PREPARE_ID_TAKEN = 17


class LaunchFailed(GputuiError):
    """The host could not start the job."""


@dataclass(frozen=True)
class HostTools:
    """What the host told us while the job folder was made."""

    tmux: bool
    commit: str | None


def command_from_argv(argv: Sequence[str]) -> str:
    """One argument is a shell command line as typed; several are a program and its arguments."""
    words = list(argv)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        raise LaunchFailed("no command given: put it after `--`, e.g. -- python train.py")
    return words[0] if len(words) == 1 else shlex.join(words)


def default_name(command: str) -> str:
    """The first line of the command, shortened: what a person recognises in a list."""
    first = command.strip().splitlines()[0] if command.strip() else "job"
    return first if len(first) <= 40 else first[:39] + "…"


def job_slug(name: str) -> str:
    slug = _NOT_SLUG.sub("-", name.lower()).strip("-")[:24].strip("-")
    return slug or "job"


def new_job_id(name: str) -> str:
    """``<slug of the name>-<5 random characters>``: safe for a folder and a tmux session."""
    return f"{job_slug(name)}-{''.join(secrets.choice(_ID_ALPHABET) for _ in range(5))}"


async def launch_job(
    jobs: HostJobs,
    command: str,
    *,
    name: str | None = None,
    workdir: str | None = None,
    env_activation: str | None = None,
    use_host_activation: bool = True,
    git_commit: str | None = None,
    use_tmux: bool = True,
) -> JobMeta:
    """Start ``command`` detached on the host of ``jobs``; return what was launched."""
    if not command.strip():
        raise LaunchFailed("the command is empty")
    host = jobs.link.host
    name = name if name is not None and name.strip() else default_name(command)
    activation = env_activation
    if activation is None and use_host_activation:
        activation = host.env_activation
    root = await jobs.root()
    if "'" in root:
        raise LaunchFailed(f"the jobs folder on {host.name} has a quote in its path: {root}")
    folder = await _absolute_workdir(jobs, workdir or host.workdir)

    job_id, tools = await _prepare(jobs, root, name, folder)
    job_dir = f"{root}/{job_id}"
    runner = "tmux" if use_tmux and tools.tmux else "nohup"
    socket = os.environ.get(TMUX_SOCKET_ENV) or None
    meta = JobMeta(
        id=job_id,
        name=name,
        command=command,
        workdir=folder,
        host=host.name,
        created_at=time.time(),
        env_activation=activation,
        address=host.address,
        git_commit=git_commit or tools.commit,
        runner=runner,
        tmux_session=job_id if runner == "tmux" else None,
        tmux_socket=socket if runner == "tmux" else None,
        rate_usd_per_hour=host.rate_usd_per_hour,
    )
    files = {
        COMMAND: command,
        WORKDIR: folder,
        WRAPPER_SCRIPT: load("wrapper.sh"),
        "meta.json.tmp": meta.to_json_line(),
    }
    if activation:
        files[ENV] = activation
    inline = await _write_big_files(jobs, job_dir, files)
    started = await jobs.link.run(
        sh_command(
            load("start.sh"),
            "gputui-start",
            job_dir,
            job_id,
            socket or "",
            "yes" if runner == "tmux" else "no",
            *inline,
        )
    )
    if not started.ok:
        detail = (started.stderr.strip().splitlines() or [f"exit {started.exit_status}"])[-1]
        raise LaunchFailed(f"could not start {job_id} on {host.name}: {detail}")
    await asyncio.to_thread(remember_job, meta)  # the laptop's index: a file, off the loop
    return meta


async def _absolute_workdir(jobs: HostJobs, workdir: str) -> str:
    if workdir.startswith("~"):
        return await jobs.link.expand(workdir)
    if workdir.startswith("/"):
        return workdir
    return f"{(await jobs.link.home()).rstrip('/')}/{workdir}"


async def _prepare(jobs: HostJobs, root: str, name: str, workdir: str) -> tuple[str, HostTools]:
    for _ in range(5):
        job_id = new_job_id(name)
        result = await jobs.link.run(
            sh_command(load("prepare.sh"), "gputui-prepare", root, job_id, workdir)
        )
        if result.exit_status == _PREPARE_ID_TAKEN:
            continue
        if not result.ok:
            detail = (result.stderr.strip().splitlines() or [f"exit {result.exit_status}"])[-1]
            raise LaunchFailed(f"cannot create the job folder on {jobs.host_name}: {detail}")
        facts = dict(line.partition(" ")[::2] for line in result.stdout.splitlines())
        return job_id, HostTools(
            tmux=facts.get("tmux") == "yes", commit=facts.get("commit") or None
        )
    raise LaunchFailed(f"could not find a free job id on {jobs.host_name}")


async def _write_big_files(jobs: HostJobs, job_dir: str, files: dict[str, str]) -> list[str]:
    """Write the files too big for a command line over SFTP; return the rest as name, text…"""
    inline: list[str] = []
    for name, text in files.items():
        data = text.encode()
        if len(data) > ARGUMENT_LIMIT:
            await jobs.link.write_bytes(f"{job_dir}/{name}", data)
        else:
            inline += [name, text]
    return inline
