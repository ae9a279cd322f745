"""Which config and output folder a trainer command line names (the fallback of ``P``)."""

from __future__ import annotations

import pytest

from transfer.jobs.outputs import config_reference


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python -m trainers.lora --config configs/dev.yaml", ("configs/dev.yaml", None)),
        ("python -m trainers.lora --config=configs/a b.yaml", ("configs/a", None)),
        ("python -m trainers.lora --config 'configs/a b.yaml'", ("configs/a b.yaml", None)),
        (
            "cd x && python -m trainers.lora --config c.yaml --set output_dir=/data/run "
            "--set train.max_steps=5",
            ("c.yaml", "/data/run"),
        ),
        ("python train.py --set=output_dir=out", (None, "out")),
        ("python train.py", (None, None)),
        ("python -m trainers.lora --config", (None, None)),
        ("echo 'unbalanced", (None, None)),
    ],
)
def test_config_reference(command: str, expected: tuple[str | None, str | None]) -> None:
    assert config_reference(command) == expected
