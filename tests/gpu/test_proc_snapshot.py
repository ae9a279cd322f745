"""The /proc snapshot parser on a recorded capture and on this machine's /proc."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psutil
from gpu_nvml_replay import RECORDED

from trainers.protocol.smi import PROC_COMMAND, ProcSnapshot, proc_command

# Two captures of `cat /proc/loadavg /proc/meminfo /proc/stat /proc/net/dev; df -Pk /work`
# on a 2-CPU VM with one core kept busy, taken at these Unix times.
T0, T1 = 1795329027.909540541, 1795329028.915198601
CAPTURE_0 = (RECORDED / "recorded_proc_vm2cpu_0.txt").read_text()
CAPTURE_1 = (RECORDED / "recorded_proc_vm2cpu_1.txt").read_text()


def test_one_snapshot_gives_everything_but_rates() -> None:
    stats = ProcSnapshot.parse(CAPTURE_1, T1).host_stats(workdir="/work")

    assert (stats.load_1, stats.load_5, stats.load_15) == (1.29, 0.58, 0.26)
    assert stats.cpu_count == 2
    assert stats.ram_total_mib == 24684096 // 1024
    meminfo = dict(line.split(":", 1) for line in CAPTURE_1.splitlines() if line.startswith("Mem"))
    available_kib = int(meminfo["MemAvailable"].split()[0])
    assert stats.ram_used_mib == (24684096 - available_kib) // 1024
    assert (stats.disk_total_mib, stats.disk_free_mib) == (264212084 // 1024, 78208544 // 1024)
    assert stats.disk_path == "/work"
    assert (stats.cpu_pct, stats.net_rx_bps, stats.net_tx_bps) == (None, None, None)


def test_two_snapshots_give_cpu_and_network_rates() -> None:
    before = ProcSnapshot.parse(CAPTURE_0, T0)
    after = ProcSnapshot.parse(CAPTURE_1, T1)

    stats = after.host_stats(previous=before)

    # cpu  15138 0 9463 1123419 1112 0 485 460 0 0  ->  cpu  15239 0 9463 1123518 1112 0 485 460
    # 101 busy ticks of 200: one of the two cores was kept busy.
    assert stats.cpu_pct == 50.5
    assert before.net_bytes is not None and after.net_bytes is not None
    # lo is left out: 10.8 GB went through it, and eth0 alone is counted.
    assert before.net_bytes[0] == 175621948
    assert stats.net_rx_bps == round((after.net_bytes[0] - before.net_bytes[0]) / (T1 - T0), 1)
    assert stats.net_tx_bps is not None and stats.net_tx_bps >= 0.0


def test_a_missing_part_leaves_only_its_fields_empty() -> None:
    text = CAPTURE_1.split("Filesystem")[0] + "df: /nope: No such file or directory\n"
    stats = ProcSnapshot.parse(text, T1).host_stats()
    assert (stats.disk_free_mib, stats.disk_total_mib) == (None, None)
    assert stats.ram_total_mib is not None and stats.load_1 == 1.29
    assert ProcSnapshot.parse("", T1).host_stats().ram_total_mib is None


def test_the_remote_command_on_this_machine(tmp_path: Path) -> None:
    workdir = tmp_path / "a dir with 'quotes' and spaces"
    workdir.mkdir()

    def capture() -> ProcSnapshot:
        done = subprocess.run(
            proc_command(str(workdir)), shell=True, capture_output=True, text=True, check=True
        )
        return ProcSnapshot.parse(done.stdout, time.time())

    first = capture()
    time.sleep(0.2)
    stats = capture().host_stats(previous=first, workdir=str(workdir))

    assert stats.cpu_count == os.cpu_count()
    assert stats.ram_total_mib == psutil.virtual_memory().total // 2**20
    assert stats.disk_total_mib == psutil.disk_usage(str(workdir)).total // 2**20
    assert stats.cpu_pct is not None and 0.0 <= stats.cpu_pct <= 100.0
    assert stats.net_rx_bps is not None


def test_the_command_expands_home_on_the_host() -> None:
    assert proc_command("~") == PROC_COMMAND.format(workdir='"$HOME"')
    assert proc_command("~/runs/a b").endswith("df -Pk \"$HOME\"/'runs/a b'")
    done = subprocess.run(proc_command("~"), shell=True, capture_output=True, text=True, check=True)
    home = psutil.disk_usage(str(Path.home())).total // 2**20
    assert ProcSnapshot.parse(done.stdout, 0.0).host_stats().disk_total_mib == home
