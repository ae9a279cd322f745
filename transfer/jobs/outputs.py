"""Where a job's results are on its host: the folder a pull of "the job's outputs" fetches.

gputui's trainer leaves a link ``output`` in the job folder (``protocol.jobdir.OUTPUT_LINK``)
that points at the run's output folder (checkpoints, adapter); the host resolves it. A job
started before the link existed, or whose trainer has not made it yet, falls back to the
``output_dir`` of the config its command names (``--config FILE``, ``--set output_dir=…``),
read on the host, relative to the job's work folder.
"""

from __future__ import annotations

import posixpath
import shlex

import yaml

from trainers.protocol.jobdir import OUTPUT_LINK
from transfer.errors import GputuiError
from transfer.jobs.host import HostJobs
from transfer.jobs.state import JobStatus

CONFIG_LIMIT = 1024 * 1024  # a training config is a few KB; anything bigger is not one


async def job_output_folder(jobs: HostJobs, job: JobStatus) -> str | None:
    """The absolute output folder of ``job`` on its host, or None when it names none."""
    linked = await _linked_folder(jobs, job)
    if linked:
        return linked
    return await _config_folder(jobs, job)


async def _linked_folder(jobs: HostJobs, job: JobStatus) -> str | None:
    link = f"{await jobs.job_dir(job.id)}/{OUTPUT_LINK}"
    quoted = shlex.quote(link)
    try:
        result = await jobs.link.run(f"[ -d {quoted} ] && readlink -f -- {quoted}")
    except GputuiError:
        return None
    target = result.stdout.strip()
    return target if result.ok and target.startswith("/") and "\n" not in target else None


def config_reference(command: str) -> tuple[str | None, str | None]:
    """``(config path, output_dir override)`` named by a trainer command line."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None, None
    config: str | None = None
    output_dir: str | None = None
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else None
        if word == "--config" and following:
            config = following
        elif word.startswith("--config="):
            config = word.partition("=")[2] or None
        elif word == "--set" and following and following.startswith("output_dir="):
            output_dir = following.partition("=")[2] or None
        elif word.startswith("--set=output_dir="):
            output_dir = word.partition("output_dir=")[2] or None
    return config, output_dir


async def _config_folder(jobs: HostJobs, job: JobStatus) -> str | None:
    config, output_dir = config_reference(job.meta.command)
    workdir = job.meta.workdir or await jobs.link.expand(jobs.link.host.workdir)
    if output_dir is None and config is not None:
        output_dir = await _read_output_dir(jobs, _on_host(workdir, config))
    if not output_dir:
        return None
    return posixpath.normpath(_on_host(workdir, output_dir))


def _on_host(workdir: str, path: str) -> str:
    return path if path.startswith(("/", "~")) else posixpath.join(workdir, path)


async def _read_output_dir(jobs: HostJobs, path: str) -> str | None:
    try:
        path = await jobs.link.expand(path)
        if (await jobs.link.stat(path)).size > CONFIG_LIMIT:
            return None
        data = yaml.safe_load(await jobs.link.read_bytes(path))
    except (GputuiError, OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    value = data.get("output_dir") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value.strip() else None
