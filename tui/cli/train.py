"""``gputui train`` and ``gputui resume``: the loop's launch step in one command.

``train`` pushes this folder to the host (the engine of ``gputui push``: only what changed) and
launches gputui's trainer on it as a detached job, over one connection. Like ``run``, it prints
only the job id on stdout; what a person reads goes to stderr. ``resume`` starts a preempted or
stopped job again with the same command in the same folder: the trainer picks up its newest
committed checkpoint by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from transfer.connect import open_link
from transfer.errors import GputuiError
from transfer.hosts import HostProfile, HostStore
from transfer.jobs.host import HostJobs
from transfer.jobs.launch import launch_job
from transfer.jobs.resume import resume_job
from transfer.jobs.state import JobMeta
from tui.cli.common import UsageError, report_started

#: The trainer's entry point on the host, run from the work folder (see trainers/lora.py).
TRAINER = ("python", "-m", "trainers.lora")
#: ``python -m trainers.config`` exits with this, one line on stderr, when the config is invalid.
CONFIG_INVALID = 2
CONFIG_CHECK_TIMEOUT_S = 60.0


def register(subparsers: Any) -> None:
    train = subparsers.add_parser(
        "train",
        help="push this folder and launch the trainer on it as a detached job",
        description="Push this folder to HOST's workdir (only what changed; .gitignore applies), "
        "then launch `python -m trainers.lora --config CONFIG` there as a detached job and print "
        "its id. CONFIG is a path inside this folder, e.g. configs/dev.yaml. Stopped or "
        "preempted, it resumes from its last checkpoint with `gputui resume HOST JOB`.",
    )
    train.add_argument("host_name", metavar="HOST")
    train.add_argument("config", metavar="CONFIG", help="training config (YAML), e.g. "
                       "configs/dev.yaml")
    train.add_argument("--name", metavar="N", help="a name to recognise the job by "
                       "(default: train-CONFIG)")
    train.add_argument("--no-push", action="store_true",
                       help="launch on what the host has; CONFIG is then a path there")
    train.add_argument("--workdir", metavar="DIR",
                       help="folder on the host to push to and run in (default: the host's "
                       "workdir)")
    train.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="SECTION.FIELD=VALUE",
                       help="override one config field (repeatable), e.g. train.max_steps=50")
    train.set_defaults(handler=train_command)

    resume = subparsers.add_parser(
        "resume",
        help="start a stopped or preempted job again (it resumes from its checkpoint)",
        description="Launch JOB's command again, in the same folder and environment, as a new "
        "job with the same name, and print the new id. gputui's trainer continues from its "
        "newest committed checkpoint.",
    )
    resume.add_argument("host_name", metavar="HOST")
    resume.add_argument("job", metavar="JOB", help="the job's id, name, or a unique id prefix")
    resume.set_defaults(handler=resume_command)


def trainer_command(config: str, overrides: list[str]) -> str:
    """The command line the job runs, each word quoted for the host's shell."""
    words = [*TRAINER, "--config", config]
    for item in overrides:
        words += ["--set", item]
    return shlex.join(words)


def default_job_name(config: str) -> str:
    return f"train-{Path(config).stem or 'config'}"


# -- train --------------------------------------------------------------------------------
def train_command(args: argparse.Namespace) -> int:
    host = HostStore().get(args.host_name)
    config = args.config
    if not args.no_push:
        config = _config_in_project(config)
        _check_config(config, args.overrides)
    command = trainer_command(config, args.overrides)
    name = args.name or default_job_name(config)
    meta = asyncio.run(_train(host, command, name, args.workdir, push=not args.no_push))
    report_started(host.name, meta, show_workdir=True)
    return 0


def _config_in_project(config: str) -> str:
    """CONFIG as a relative path inside this folder: the host runs it from its copy."""
    here = Path.cwd().resolve()
    try:
        relative = (here / config).resolve().relative_to(here)
    except ValueError:
        raise UsageError(
            f"{config} is outside this folder; run from the project folder, or pass --no-push "
            "with a path on the host"
        ) from None
    if not (here / relative).is_file():
        raise UsageError(f"no config file {config} in {here}")
    return relative.as_posix()


def _check_config(config: str, overrides: list[str]) -> None:
    """Validate the config here, so a typo fails before anything is pushed or launched.

    The trainer's own check runs as a child process (``python -m trainers.config``): the laptop
    side reaches trainers/ only through the host protocol, never by importing its modules.
    """
    argv = [sys.executable, "-m", "trainers.config", *(f"--set={item}" for item in overrides)]
    argv += ["--", config]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    try:
        done = subprocess.run(
            argv, capture_output=True, env=env, timeout=CONFIG_CHECK_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GputuiError(f"cannot check {config}: {exc}") from None
    if done.returncode == 0:
        return
    error = done.stderr.decode("utf-8", errors="replace").strip()
    if done.returncode == CONFIG_INVALID and error and "\n" not in error:
        raise UsageError(error)
    last = error.splitlines()[-1] if error else f"exit status {done.returncode}"
    raise GputuiError(f"cannot check {config}: {last}")


async def _train(
    host: HostProfile, command: str, name: str, workdir: str | None, *, push: bool
) -> JobMeta:
    folder = workdir or host.workdir
    async with open_link(host) as link:
        if push:
            await _push(link, folder)
        return await launch_job(HostJobs(link), command, name=name, workdir=folder)


async def _push(link: Any, folder: str) -> None:
    from transfer.sync.engine import Sync, SyncRequest
    from tui.cli.sync import _ProgressView, _short

    request = SyncRequest("push", os.getcwd(), folder.rstrip("/") + "/")
    view = _ProgressView(enabled=sys.stderr.isatty())
    try:
        result = await Sync(link, request, view.on_event).run()
    finally:
        view.stop()
    for problem in result.problems:
        sys.stderr.write(f"gputui: not sent: {_short(problem.path, 200)}: {problem.reason}\n")
    if not result.ok:
        raise GputuiError(
            f"the push to {link.host.name} did not complete; nothing was launched "
            "(run the same command again to resume the push)"
        )
    sys.stderr.write(
        f"pushed {result.files_sent} files to {result.destination}; "
        f"{result.files_skipped} unchanged\n"
    )


# -- resume -------------------------------------------------------------------------------
def resume_command(args: argparse.Namespace) -> int:
    host = HostStore().get(args.host_name)
    old_id, meta = asyncio.run(_resume(host, args.job))
    sys.stdout.write(meta.id + "\n")
    sys.stdout.flush()
    sys.stderr.write(
        f"resumed {old_id} as {meta.id} on {host.name}; follow it: "
        f"gputui logs {host.name} {meta.id} -f\n"
    )
    return 0


async def _resume(host: HostProfile, ref: str) -> tuple[str, JobMeta]:
    async with open_link(host) as link:
        jobs = HostJobs(link)
        old = await jobs.resolve(ref)
        return old.id, await resume_job(jobs, old.id)


def resume_hint(host_name: str, job_id: str) -> str:
    """The line that tells a person how to continue a preempted job."""
    return f"resume with: gputui resume {shlex.quote(host_name)} {job_id}"
