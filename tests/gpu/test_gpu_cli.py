"""``python -m trainers.gpu`` for real on this machine (no NVIDIA driver here)."""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

from trainers.protocol.gpu_sample import HostSample

REPO = Path(__file__).resolve().parents[2]


def run_sampler(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainers.gpu", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def has_nvidia_driver() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


def test_once_json_prints_the_host_and_why_there_are_no_gpus(tmp_path: Path) -> None:
    done = run_sampler("--once", "--json", "--workdir", str(tmp_path))

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    (line,) = done.stdout.splitlines()
    sample = HostSample.from_json(line)
    if has_nvidia_driver():
        assert sample.gpu_status in ("ok", "no NVIDIA GPU found")
    else:
        assert sample.gpu_status == "no NVIDIA driver (libnvidia-ml.so.1 not found)"
        assert sample.gpus == []
        assert json.loads(line)["gpus"] == []
    host = sample.host
    assert host.cpu_count == os.cpu_count()
    assert host.cpu_pct is not None and 0.0 <= host.cpu_pct <= 100.0
    assert host.load_1 is not None and host.load_15 is not None
    assert host.ram_total_mib == psutil.virtual_memory().total // 2**20
    assert host.ram_used_mib is not None and 0 < host.ram_used_mib < host.ram_total_mib
    disk = psutil.disk_usage(str(tmp_path))
    assert host.disk_path == str(tmp_path)
    assert host.disk_total_mib == disk.total // 2**20
    assert host.disk_free_mib is not None
    assert abs(host.disk_free_mib - disk.free // 2**20) < 0.02 * host.disk_total_mib
    assert host.net_rx_bps is not None and host.net_tx_bps is not None


def test_human_output_without_json(tmp_path: Path) -> None:
    done = run_sampler("--workdir", str(tmp_path))

    assert done.returncode == 0, done.stderr
    assert f"at {tmp_path}" in done.stdout
    assert "ram " in done.stdout and "cpu " in done.stdout
    if not has_nvidia_driver():
        assert "GPUs: no NVIDIA driver (libnvidia-ml.so.1 not found)" in done.stdout


def test_stream_prints_one_line_per_interval(tmp_path: Path) -> None:
    done = run_sampler(
        "--stream", "--interval", "0.2", "--count", "3", "--json", "--workdir", str(tmp_path)
    )

    assert done.returncode == 0, done.stderr
    samples = [HostSample.from_json(line) for line in done.stdout.splitlines()]
    assert len(samples) == 3
    gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(samples)]
    assert all(0.15 <= gap <= 1.0 for gap in gaps), gaps
    assert all(s.host.cpu_pct is not None for s in samples)


def test_a_missing_workdir_leaves_disk_unknown(tmp_path: Path) -> None:
    done = run_sampler("--once", "--json", "--workdir", str(tmp_path / "not-yet"))

    assert done.returncode == 0, done.stderr
    host = HostSample.from_json(done.stdout).host
    assert host.disk_free_mib is None and host.disk_total_mib is None
    assert host.ram_total_mib is not None


def test_bad_interval_is_one_line_on_stderr() -> None:
    done = run_sampler("--stream", "--interval", "0")

    assert done.returncode == 2
    assert done.stderr.strip() == "trainers.gpu: --interval must be more than 0 seconds"
    assert done.stdout == ""


def test_the_sampler_never_loads_torch() -> None:
    probe = (
        "import sys, trainers.gpu as g\n"
        "heavy = ('torch', 'numpy', 'transformers', 'pynvml', 'psutil')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
        "g.main(['--once', '--json'])\n"
        "print(','.join(m for m in ('torch', 'numpy', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    at_import, _sample, after_sample = done.stdout.splitlines()
    assert at_import == ""  # even pynvml and psutil wait for the first sample
    assert after_sample == ""
