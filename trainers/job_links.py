"""The links from a gputui job folder to the run's metrics and outputs (see protocol/jobdir.py)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from trainers.protocol.jobdir import JOB_DIR_ENV, METRICS_LINK, OUTPUT_LINK


def link_job_dir(output: Path, job_dir: str | None = None) -> None:
    """Point a gputui job folder at this run's metrics and outputs.

    The laptop then follows a job's metrics and pulls its results without reading its config.
    Each link is made under a temporary name and renamed over the old one, so a reader never
    finds it missing, even when a resume in another folder replaces it. A job folder that cannot
    take the links costs a warning, never the run.
    """
    folder = job_dir if job_dir is not None else os.environ.get(JOB_DIR_ENV)
    if not folder:
        return
    output = Path(os.path.abspath(output))
    links = {METRICS_LINK: output / "metrics.jsonl", OUTPUT_LINK: output}
    for name, target in links.items():
        link = Path(folder) / name
        scratch = Path(folder) / f".{name}.tmp-{os.getpid()}"
        try:
            scratch.unlink(missing_ok=True)
            os.symlink(target, scratch)
            os.replace(scratch, link)
        except OSError as exc:
            with contextlib.suppress(OSError):
                scratch.unlink()
            print(f"warning: cannot link {link} to {target}: {exc.strerror or exc}",
                  file=sys.stderr, flush=True)
