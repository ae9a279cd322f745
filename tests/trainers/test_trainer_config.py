"""Training configs: the shipped ones load, bad ones give one clear line per bad field."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from trainer_helpers import ROOT, write_yaml

from trainers.config import ConfigError, load_config, parse_config


def test_shipped_configs_load() -> None:
    dev = load_config(ROOT / "configs" / "dev.yaml")
    assert dev.model.arch is not None and dev.lora is not None
    assert dev.output_dir == "runs/dev"
    assert Path(dev.data.path).name == "chat.jsonl"
    assert (ROOT / dev.data.path).is_file()
    prod = load_config(ROOT / "configs" / "prod.yaml")
    assert prod.model.name_or_path == "Qwen/Qwen2.5-7B-Instruct"
    assert prod.train.device == "cuda" and prod.train.precision == "bf16"
    assert prod.preemption.spot_notice_url is not None


def test_each_bad_field_gets_one_line(tiny_config: Callable[..., dict[str, Any]]) -> None:
    data = tiny_config(
        train={"batch_size": 0, "precision": "fp16"},
        optimizer={"lr": -1, "betas": [0.9, 1.5]},
        data={"seq_len": 2, "shuffle": True},
        checkpoint={"keep_last": 0},
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "bad.yaml")
    errors = caught.value.errors
    assert sorted(line.split(":")[0] for line in errors) == [
        "checkpoint.keep_last",
        "data.seq_len",
        "data.shuffle",
        "optimizer.betas",
        "optimizer.lr",
        "train.batch_size",
        "train.precision",
    ]
    assert "data.shuffle: unknown field" in errors
    assert "train.batch_size: Input should be greater than 0 (got 0)" in errors
    assert all("\n" not in line for line in errors)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"model": {"name_or_path": "some/model"}}, "model: give exactly one of name_or_path"),
        ({"train": {"epochs": 2}}, "train: give exactly one of max_steps or epochs"),
        (
            {"model": {"arch": {"hidden_size": 30, "num_heads": 4}}},
            "model.arch: hidden_size 30 is not a multiple of num_heads 4",
        ),
        ({"tokenizer": {}}, "a model built from arch has no tokenizer of its own"),
        ({"preemption": {"spot_notice_url": "169.254.169.254"}}, "must be an http:// or https://"),
    ],
)
def test_cross_field_rules(
    tiny_config: Callable[..., dict[str, Any]], changes: dict[str, Any], expected: str
) -> None:
    data = tiny_config(**changes)
    if changes.get("tokenizer") == {}:
        data["tokenizer"] = {}
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert len(caught.value.errors) == 1
    assert expected in caught.value.errors[0]


def test_missing_sections_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"output_dir": "x"})
    assert sorted(caught.value.errors) == [
        "data: required field is missing",
        "model: required field is missing",
        "train: required field is missing",
    ]
    broken = tmp_path / "broken.yaml"
    broken.write_text("train:\n  batch_size: [1,\n")
    with pytest.raises(ConfigError) as caught:
        load_config(broken)
    assert len(caught.value.errors) == 1 and "not valid YAML" in caught.value.errors[0]
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_overrides_apply_dotted_values(
    tmp_path: Path, tiny_config: Callable[..., dict[str, Any]]
) -> None:
    path = write_yaml(tmp_path / "c.yaml", tiny_config())
    config = load_config(path, ["train.max_steps=7", "lora.target_modules=[q_proj]"])
    assert config.train.max_steps == 7
    assert config.lora is not None and config.lora.target_modules == ["q_proj"]
    with pytest.raises(ConfigError, match=r"expected section\.field=value"):
        load_config(path, ["train.max_steps"])


def test_fingerprint_tracks_content(tiny_config: Callable[..., dict[str, Any]]) -> None:
    one = parse_config(tiny_config())
    assert one.fingerprint() == parse_config(tiny_config()).fingerprint()
    assert one.fingerprint() != parse_config(tiny_config(seed=1)).fingerprint()


def test_cli_reports_bad_fields_without_traceback(
    tmp_path: Path, tiny_config: Callable[..., dict[str, Any]]
) -> None:
    path = write_yaml(
        tmp_path / "bad.yaml", tiny_config(train={"batch_size": -3}, lora={"rank": 8})
    )
    done = subprocess.run(
        [sys.executable, "-m", "trainers.lora", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"error: {path}: lora.rank: unknown field",
        f"error: {path}: train.batch_size: Input should be greater than 0 (got -3)",
    ]
    assert "Traceback" not in done.stderr


def test_validation_entry_is_silent_when_valid_and_one_line_when_not(
    tmp_path: Path, tiny_config: Callable[..., dict[str, Any]]
) -> None:
    path = write_yaml(tmp_path / "run.yaml", tiny_config())

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trainers.config", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    valid = check(str(path))
    assert (valid.returncode, valid.stdout, valid.stderr) == (0, "", "")
    bad = check("--set", "train.batch_size=0", "--set", "lora.bogus=1", str(path))
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == f"{path}: lora.bogus: unknown field (from --set) (and 1 more)\n"


def test_the_training_command_line_imports_torch_only_to_train() -> None:
    probe = "import sys, trainers.train_cli; print('torch' in sys.modules)"
    light = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert light.stdout == "False\n", light.stderr


def test_light_modules_do_not_import_torch() -> None:
    code = (
        "import sys, trainers.config, trainers.protocol.progress, trainers.lora, trainers.loop;"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'numpy') if m in sys.modules];"
        "print(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
