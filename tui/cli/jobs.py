"""``gputui run|jobs|logs|stop|attach|setup``: detached jobs on a host, from the shell.

``run`` prints only the job id on stdout, so ``JOB=$(gputui run gpu1 -- python train.py)``
works; what a person reads goes to stderr. ``logs`` and ``setup`` print a job's log
(``tui.cli.job_logs``). A job's cost is the rate recorded at launch × runtime
(``transfer.telemetry.cost``), and a preempted job is waiting for a resume until a later job with
the same name, command and folder takes it up (``transfer.jobs.resume``).

Everything here that a host wrote (job names, log lines, error lines) is printed with its
control characters shown escaped (``tui.text``), on a terminal or not; ``logs --raw`` alone
passes log lines through as the job wrote them. Job ids are gputui's own: a host folder whose
name is not one is never listed (``transfer.jobs.state.is_job_id``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from rich.table import Table
from rich.text import Text

from transfer.connect import open_link
from transfer.errors import GputuiError
from transfer.hosts import HostProfile, HostStore
from transfer.jobs.attach import attach_argv
from transfer.jobs.host import HostJobs
from transfer.jobs.index import hosts_with_jobs
from transfer.jobs.launch import command_from_argv, launch_job
from transfer.jobs.logs import TAIL_WINDOW
from transfer.jobs.resume import is_preempted, waiting_for_resume
from transfer.jobs.state import JobMeta, JobStatus
from transfer.jobs.stop import DEFAULT_GRACE_S, stop_job
from transfer.telemetry.cost import job_cost, job_rate
from tui.cli.common import UsageError, out, print_error, print_json, report_started
from tui.cli.job_logs import logs_command, setup_command
from tui.cli.train import resume_hint
from tui.job_styles import STATE_STYLES
from tui.text import NONE, cents, duration, one_line


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="launch a detached job on a host",
        description="Launch CMD on HOST in a tmux session of its own (setsid nohup when the "
        "host has no tmux) and print the job id. One argument after -- is a shell command line "
        "('python train.py > out 2>&1'); several are a program and its arguments, passed as is.",
        usage="gputui run HOST [--name N] [--workdir DIR] [--no-tmux] -- CMD…",
    )
    run.add_argument("host_name", metavar="HOST")
    _run_options(run)
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD…")
    run.set_defaults(handler=run_command)

    listing = subparsers.add_parser(
        "jobs",
        help="list jobs",
        description="List the jobs on HOST (default: every host "
        "that jobs were launched on from this machine).",
    )
    listing.add_argument("host_name", nargs="?", metavar="HOST")
    listing.add_argument("--json", action="store_true", help="JSON for scripts")
    listing.set_defaults(handler=list_command)

    logs = subparsers.add_parser(
        "logs",
        help="print or follow a job's log",
        description="Print JOB's log (its id, name, or a unique id prefix). Progress bars "
        "redrawn with carriage returns show their last state. Control characters the job "
        "printed (escape sequences, C1 codes) are shown escaped, e.g. \\x1b[31m, unless --raw.",
    )
    logs.add_argument("host_name", metavar="HOST")
    logs.add_argument("job", metavar="JOB")
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep following until the job ends (reconnects when the link drops)",
    )
    logs.add_argument("--tail", type=int, metavar="N",
                      help="start with the last N lines (read from at most the last "
                      f"{TAIL_WINDOW // 2**20} MiB of the log)")
    logs.add_argument("--raw", action="store_true",
                      help="print the lines as the job wrote them, escape sequences and all "
                      "(by default control characters are shown escaped, e.g. \\x1b)")
    logs.set_defaults(handler=logs_command)

    stop = subparsers.add_parser(
        "stop",
        help="stop a job: SIGTERM, a grace period, then SIGKILL",
        description="Send SIGTERM to JOB's process group so it can checkpoint, wait up to "
        "--grace seconds, then SIGKILL what is left. --grace 0 sends SIGKILL at once.",
    )
    stop.add_argument("host_name", metavar="HOST")
    stop.add_argument("job", metavar="JOB")
    stop.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE_S,
        metavar="S",
        help=f"seconds between SIGTERM and SIGKILL (default {DEFAULT_GRACE_S:g})",
    )
    stop.add_argument(
        "--no-wait",
        action="store_true",
        help="return once the stop is under way (the host finishes it)",
    )
    stop.add_argument("--json", action="store_true", help="JSON for scripts")
    stop.set_defaults(handler=stop_command)

    attach = subparsers.add_parser(
        "attach",
        help="watch a job live in its tmux session (detach: Ctrl+B D)",
        description="Hand this terminal to `ssh -t HOST tmux attach` for JOB's session.",
    )
    attach.add_argument("host_name", metavar="HOST")
    attach.add_argument("job", metavar="JOB")
    attach.set_defaults(handler=attach_command)

    setup = subparsers.add_parser(
        "setup",
        help="run the host's setup command as a job and follow it",
        description="Run HOST's setup_command (gputui hosts add --setup …) as a job named "
        "'setup' and print its log until it ends; the exit status is the setup's.",
    )
    setup.add_argument("host_name", metavar="HOST")
    setup.add_argument("--detach", action="store_true", help="print the job id and return")
    setup.set_defaults(handler=setup_command)


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", metavar="N", help="a name to recognise the job by")
    parser.add_argument(
        "--workdir", metavar="DIR", help="folder to run in (default: the host's workdir)"
    )
    parser.add_argument(
        "--no-tmux", action="store_true", help="run under setsid nohup even when the host has tmux"
    )


def split_run_arguments(args: argparse.Namespace) -> list[str]:
    """Options given after HOST arrive inside the command: take them out, up to ``--``."""
    words: list[str] = list(args.command)
    if "--" in words:
        cut = words.index("--")
        leading, words = words[:cut], words[cut + 1 :]
    elif words and words[0].startswith("-"):
        raise UsageError("put the command after `--`, e.g. gputui run HOST -- python train.py")
    else:
        leading = []
    if leading:
        options = argparse.ArgumentParser(prog="gputui run", add_help=False, exit_on_error=False)
        _run_options(options)
        try:
            parsed, unknown = options.parse_known_args(leading)
        except argparse.ArgumentError as exc:
            raise UsageError(str(exc)) from None
        if unknown:
            raise UsageError(f"unknown option(s) before `--`: {' '.join(unknown)}")
        for key in ("name", "workdir"):
            if getattr(parsed, key) is not None:
                setattr(args, key, getattr(parsed, key))
        args.no_tmux = args.no_tmux or parsed.no_tmux
    return words


# -- run ----------------------------------------------------------------------------------
def run_command(args: argparse.Namespace) -> int:
    command = command_from_argv(split_run_arguments(args))
    host = HostStore().get(args.host_name)
    meta = asyncio.run(_launch(host, command, args.name, args.workdir, not args.no_tmux))
    report_started(host.name, meta)
    return 0


async def _launch(
    host: HostProfile, command: str, name: str | None, workdir: str | None, use_tmux: bool
) -> JobMeta:
    async with open_link(host) as link:
        return await launch_job(
            HostJobs(link), command, name=name, workdir=workdir, use_tmux=use_tmux
        )


# -- jobs ---------------------------------------------------------------------------------
def _job_json(job: JobStatus, host: HostProfile) -> dict[str, Any]:
    """A job for ``--json``, its cost by the one rule: the rate recorded at launch × runtime."""
    rate = job_rate(job.meta.rate_usd_per_hour, host.rate_usd_per_hour)
    return job.to_json(job_cost(rate, job.runtime_s).so_far)


def list_command(args: argparse.Namespace) -> int:
    store = HostStore()
    names = [args.host_name] if args.host_name else hosts_with_jobs()
    hosts = [store.get(name) for name in names] if args.host_name else _known(store, names)
    results = asyncio.run(_list_all(hosts))
    if args.json:
        print_json(
            [
                _job_json(job, host)
                for host, jobs, _error in results
                for job in jobs
            ]
        )
    else:
        _print_jobs(results)
    failed = [(host, error) for host, _jobs, error in results if error]
    for host, error in failed:
        print_error(f"{host.name}: {error}")
    if args.host_name and failed:
        return 1
    return 0


def _known(store: HostStore, names: list[str]) -> list[HostProfile]:
    by_name = {host.name: host for host in store.load()}
    return [by_name[name] for name in names if name in by_name]


async def _list_all(
    hosts: list[HostProfile],
) -> list[tuple[HostProfile, list[JobStatus], str | None]]:
    async def one(host: HostProfile) -> tuple[HostProfile, list[JobStatus], str | None]:
        try:
            async with open_link(host) as link:
                return host, await HostJobs(link).list(), None
        except GputuiError as exc:
            return host, [], str(exc)

    return list(await asyncio.gather(*(one(host) for host in hosts)))


def _print_jobs(results: list[tuple[HostProfile, list[JobStatus], str | None]]) -> None:
    if not any(jobs for _h, jobs, _e in results):
        if not any(error for _h, _j, error in results):
            out().print("no jobs yet; launch one with: gputui run HOST -- CMD")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("HOST", "ID", "NAME", "STATE", "RUNTIME", "EXIT", "COST"):
        table.add_column(
            column, justify="right" if column in ("RUNTIME", "EXIT", "COST") else "left"
        )
    for host, jobs, _error in results:
        for job in jobs:
            rate = job_rate(job.meta.rate_usd_per_hour, host.rate_usd_per_hour)
            table.add_row(
                host.name,
                job.id,
                Text(one_line(job.name)),
                Text(job.state_text, style=STATE_STYLES[job.state]),
                NONE if job.runtime_s is None else duration(job.runtime_s, days=False),
                NONE if job.exit_code is None else str(job.exit_code),
                cents(job_cost(rate, job.runtime_s).so_far),
            )
    out().print(table)
    for host, jobs, _error in results:
        for job in waiting_for_resume(jobs):
            sys.stdout.write(f"{job.id} ended {job.state_text}; {resume_hint(host.name, job.id)}\n")


# -- stop ---------------------------------------------------------------------------------
def stop_command(args: argparse.Namespace) -> int:
    if args.grace < 0:
        raise UsageError("--grace takes seconds, 0 or more")
    host = HostStore().get(args.host_name)
    before, after = asyncio.run(_stop(host, args.job, args.grace, not args.no_wait))
    if args.json:
        print_json(_job_json(after, host))
    elif not before.state.is_active:
        out().print(f"{after.id} had already ended: {after.state_text}", markup=False)
    elif after.state.is_active:
        out().print(f"{after.id}: stop under way ({after.state_text})", markup=False)
    else:
        out().print(f"{after.id}: {after.state_text}", markup=False)
    if not args.json and is_preempted(after):
        sys.stdout.write(resume_hint(host.name, after.id) + "\n")
    return 0


async def _stop(
    host: HostProfile, ref: str, grace_s: float, wait: bool
) -> tuple[JobStatus, JobStatus]:
    async with open_link(host) as link:
        jobs = HostJobs(link)
        job = await jobs.resolve(ref)
        return job, await stop_job(jobs, job.id, grace_s=grace_s, wait=wait)


# -- attach -------------------------------------------------------------------------------
def attach_command(args: argparse.Namespace) -> int:
    host = HostStore().get(args.host_name)
    job = asyncio.run(_resolve(host, args.job))
    argv = attach_argv(host, job)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        raise GputuiError(f"cannot run {argv[0]}: {exc.strerror}") from None
    return 0  # not reached


async def _resolve(host: HostProfile, ref: str) -> JobStatus:
    async with open_link(host) as link:
        return await HostJobs(link).resolve(ref)
