"""The state rules, from the raw facts a host reports, and the probe output they are read from."""

from __future__ import annotations

import json

import pytest

from transfer.jobs.state import JobFacts, JobMeta, JobState, derive_status, parse_probe
from transfer.telemetry.cost import job_cost

BOOT = "5f0c3a1e-1111-2222-3333-444455556666"
NOW = 1_700_000_100.0
META = JobMeta(
    id="train-abcde",
    name="train",
    command="python train.py",
    workdir="/w",
    host="gpu1",
    created_at=1_700_000_000.0,
).to_json_line()


def facts(**fields: object) -> JobFacts:
    values: dict[str, object] = {"job_id": "train-abcde", "meta": META}
    values.update(fields)
    return JobFacts(**values)  # type: ignore[arg-type]


def state_of(**fields: object) -> tuple[JobState, str]:
    status = derive_status(facts(**fields), BOOT, NOW)
    assert status is not None
    return status.state, status.detail


RUNNING_PID = f"4242 4242 {BOOT} 9000"
WRAPPER = f"4240 {BOOT} 8990"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"exit_code": "0", "pid": RUNNING_PID}, (JobState.SUCCEEDED, "exit 0")),
        ({"exit_code": "3", "pid": RUNNING_PID}, (JobState.FAILED, "exit 3")),
        ({"exit_code": "137"}, (JobState.FAILED, "exit 137, SIGKILL")),
        (
            {"exit_code": "0", "stop": "TERM 1700000050"},
            (JobState.STOPPED, "SIGTERM; exit 0"),
        ),
        (
            {"exit_code": "137", "stop": "TERM 1700000050 KILL 1700000110"},
            (JobState.STOPPED, "SIGKILL after 60 s grace; exit 137, SIGKILL"),
        ),
        (
            {"exit_code": "137", "stop": "KILL 1700000050"},
            (JobState.STOPPED, "SIGKILL; exit 137, SIGKILL"),
        ),
        ({"pid": RUNNING_PID, "pid_proc": 9000}, (JobState.RUNNING, "")),
        (
            {"pid": RUNNING_PID, "pid_proc": 9000, "stop": "TERM 1700000090"},
            (JobState.RUNNING, "stopping: SIGTERM sent 10 s ago"),
        ),
        (
            {"pid": RUNNING_PID, "wrapper": WRAPPER, "wrapper_proc": 8990},
            (JobState.RUNNING, "ending"),
        ),
        ({"pid": RUNNING_PID}, (JobState.LOST, "its process vanished without an exit code")),
        (
            {"pid": RUNNING_PID, "pid_proc": 12345},
            (JobState.LOST, "its process is gone and the PID now belongs to another process"),
        ),
        (
            {"pid": "4242 4242 other-boot 9000", "pid_proc": 9000},
            (JobState.LOST, "the host rebooted"),
        ),
        ({"wrapper": WRAPPER, "wrapper_proc": 8990}, (JobState.STARTING, "")),
        ({"wrapper": WRAPPER}, (JobState.LOST, "the wrapper died before starting the command")),
        ({"wrapper": "4240 other-boot 8990"}, (JobState.LOST, "the host rebooted")),
        ({"meta_mtime": NOW - 5}, (JobState.STARTING, "")),
        ({"meta_mtime": NOW - 500}, (JobState.LOST, "it never started")),
    ],
)
def test_states(fields: dict[str, object], expected: tuple[JobState, str]) -> None:
    assert state_of(**fields) == expected


def test_times_runtime_and_cost() -> None:
    status = derive_status(
        facts(pid=RUNNING_PID, pid_proc=9000, started_at="1700000010"), BOOT, NOW
    )
    assert status is not None
    assert status.runtime_s == 90.0
    assert job_cost(2.0, status.runtime_s).so_far == pytest.approx(0.05)
    ended = derive_status(
        facts(exit_code="0", started_at="1700000010", ended_at="1700000040"), BOOT, NOW
    )
    assert ended is not None and ended.runtime_s == 30.0 and ended.ended_at == 1_700_000_040.0
    assert derive_status(facts(), BOOT, NOW) is not None
    unknown = derive_status(facts(meta_mtime=NOW), BOOT, NOW)
    assert unknown is not None and unknown.runtime_s is None
    assert job_cost(1.0, unknown.runtime_s).so_far is None


def test_unreadable_metadata_is_skipped() -> None:
    assert derive_status(facts(meta="{not json"), BOOT, NOW) is None
    assert derive_status(facts(meta="[1, 2]"), BOOT, NOW) is None


def test_metadata_round_trips_hostile_text() -> None:
    meta = JobMeta(
        id="x-abcde",
        name='it\'s "$HOME";\nrm -rf /',
        command="echo '$X'\n\tdone",
        workdir="/w w",
        host="gpu1",
        created_at=1.5,
        env_activation="source 'a b'/bin/activate",
    )
    line = meta.to_json_line()
    assert "\n" not in line
    assert JobMeta.from_json("x-abcde", json.loads(line)) == meta


def test_parse_probe_output() -> None:
    text = "\n".join(
        [
            f"boot {BOOT}",
            "now 1700000100",
            "@job a-11111",
            f"meta {META}",
            f"wrapper {WRAPPER}",
            "wrapper_proc 8990",
            f"pid {RUNNING_PID}",
            "pid_proc 9000",
            "started_at 1700000010",
            "@job b-22222",
            f"meta {META}",
            "exit_code 1",
            "ended_at 1700000050",
            "stop TERM 1700000040 KILL 1700000045",
            "@job c-33333",  # no metadata line: skipped
            "",
        ]
    )
    host = parse_probe(text)
    assert host.boot_id == BOOT and host.now == NOW
    assert [j.job_id for j in host.jobs] == ["a-11111", "b-22222"]
    first, second = host.jobs
    assert (first.pid, first.pid_proc, first.wrapper_proc) == (RUNNING_PID, 9000, 8990)
    assert (second.exit_code, second.stop) == ("1", "TERM 1700000040 KILL 1700000045")
    status = derive_status(second, host.boot_id, host.now)
    assert status is not None and status.state is JobState.STOPPED
