"""Bad configs, bad data, models too big: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from trainer_helpers import one_error_line, run_trainer, write_yaml

from trainers.config import ConfigError, parse_config
from trainers.data import DataError
from trainers.loop import EXIT_DONE, Trainer
from trainers.modeling import TrainerError, out_of_memory_is_an_error
from trainers.protocol.progress import read_lines
from trainers.schedule import total_steps

Config = Callable[..., dict[str, Any]]


def test_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"output_dir: runs/x\n# caf\xe9\n")
    line = one_error_line(run_trainer("--config", str(path)))
    assert line == f"error: {path}: line 2: not valid UTF-8"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optimizer.lr=abc", "optimizer.lr: Input should be a valid number"),
        ("train.lr=0.1", "train.lr: unknown field (from --set)"),
        ("nosuchsection.x=1", "nosuchsection: unknown field (from --set)"),
        ("train.max_steps", "--set: 'train.max_steps': expected section.field=value"),
        ("seed=[1", "--set: seed: not valid YAML"),
        ("seed=!!python/name:os.system", "--set: seed: not valid YAML"),
        ("seed.x=1", "--set: seed.x: seed is not a section"),
    ],
)
def test_bad_set_value_is_one_line_naming_the_field(
    tmp_path: Path, tiny_config: Config, override: str, expected: str
) -> None:
    path = write_yaml(tmp_path / "c.yaml", tiny_config())
    line = one_error_line(run_trainer("--config", str(path), "--set", override))
    assert expected in line


NON_FINITE = [
    ("train", "epochs", ".inf"),
    ("train", "epochs", "-.inf"),
    ("train", "grad_clip", ".inf"),
    ("optimizer", "eps", ".inf"),
    ("optimizer", "eps", ".nan"),
    ("optimizer", "lr", ".nan"),
    ("optimizer", "weight_decay", ".inf"),
    ("optimizer", "min_lr_ratio", ".nan"),
    ("optimizer", "warmup_steps", ".inf"),
    ("optimizer", "betas", "[.nan, 0.9]"),
    ("checkpoint", "every_minutes", ".inf"),
    ("preemption", "poll_seconds", ".nan"),
    ("data", "eval_fraction", ".nan"),
    ("lora", "dropout", ".nan"),
]


@pytest.mark.parametrize(("section", "name", "value"), NON_FINITE)
def test_non_finite_numbers_are_refused(
    tiny_config: Config, section: str, name: str, value: str
) -> None:
    data = tiny_config()
    if name == "epochs":
        data["train"]["max_steps"] = None
    data.setdefault(section, {})[name] = yaml.safe_load(value)
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert [line.split(":")[0].split(".")[:2] for line in caught.value.errors] == [[section, name]]
    assert "finite" in caught.value.errors[0]


def test_infinite_eps_in_a_file_is_refused_before_training(
    tmp_path: Path, tiny_config: Config
) -> None:
    config = tiny_config(train={"max_steps": 2})
    path = write_yaml(tmp_path / "c.yaml", config)
    path.write_text(path.read_text().replace("optimizer:\n", "optimizer:\n  eps: .inf\n"))
    line = one_error_line(run_trainer("--config", str(path)))
    assert line == f"error: {path}: optimizer.eps: Input should be a finite number (got inf)"
    assert not Path(config["output_dir"]).exists()


def test_epochs_too_many_to_count_is_one_error(tiny_config: Config) -> None:
    data = tiny_config()
    data["train"].update(max_steps=None, epochs=1e308)
    with pytest.raises(TrainerError, match=r"train\.epochs"):
        total_steps(parse_config(data), 1000)


def test_seed_out_of_range_is_one_line(tmp_path: Path, tiny_config: Config) -> None:
    path = write_yaml(tmp_path / "c.yaml", tiny_config())
    line = one_error_line(run_trainer("--config", str(path), "--set", f"seed={2**70}"))
    assert "seed: Input should be less than or equal to 4294967295" in line
    assert parse_config(tiny_config(seed=2**32 - 1)).seed == 2**32 - 1


@pytest.mark.parametrize("kind", ["missing", "folder", "not-utf8"])
def test_bad_data_file_is_one_line_naming_it(
    tmp_path: Path, tiny_config: Config, kind: str
) -> None:
    data = tmp_path / "chat.jsonl"
    if kind == "folder":
        data.mkdir()
    elif kind == "not-utf8":
        good = json.dumps({"messages": [{"role": "assistant", "content": "hi"}]})
        data.write_bytes(f"{good}\n".encode() + b'{"messages": "caf\xe9"}\n')
    config = tiny_config(data={"path": str(data), "cache_dir": str(tmp_path / "cache")})
    line = one_error_line(run_trainer("--config", str(write_yaml(tmp_path / "c.yaml", config))))
    expected = {
        "missing": f"error: {data}: no such data file",
        "folder": f"error: {data}: not a file",
        "not-utf8": f"error: {data}:2: not valid UTF-8",
    }
    assert line == expected[kind]


def test_model_too_big_for_memory_is_refused_before_allocating(
    tmp_path: Path, tiny_config: Config
) -> None:
    arch = {"hidden_size": 65536, "num_layers": 64, "num_heads": 4, "num_kv_heads": 2}
    config = tiny_config(model={"arch": arch})
    line = one_error_line(run_trainer("--config", str(write_yaml(tmp_path / "c.yaml", config))))
    assert re.fullmatch(
        r"error: model\.arch: the model does not fit: \d{3}(,\d{3}){3} parameters need "
        r"[\d,]+\.\d GiB in fp32, and this host has [\d,]+\.\d GiB of memory available",
        line,
    ), line


@pytest.mark.parametrize(
    ("name", "value"), [("hidden_size", 2**40), ("num_layers", 10**9), ("intermediate_size", 2**62)]
)
def test_absurd_arch_sizes_are_refused_in_the_config(
    tiny_config: Config, name: str, value: int
) -> None:
    data = tiny_config()
    data["model"]["arch"][name] = value
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert [line.split(":")[0] for line in caught.value.errors] == [f"model.arch.{name}"]


def test_failed_allocation_becomes_one_error() -> None:
    with (
        pytest.raises(TrainerError, match="out of memory while building the model: Default"),
        out_of_memory_is_an_error("building the model"),
    ):
        torch.empty(2**60, dtype=torch.uint8)


def chat(user: str, assistant: str) -> str:
    turns = [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return json.dumps({"messages": turns}) + "\n"


def test_batch_with_nothing_to_learn_is_skipped(
    tmp_path: Path, tiny_config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unpacked rows of 16 tokens: a long question leaves no assistant token in its row."""
    data = tmp_path / "chat.jsonl"
    long_question = " ".join(f"word{n}" for n in range(60))
    data.write_text((chat("hi", "hello there") + chat(long_question, "ok")) * 12)
    config = tiny_config(
        data={"path": str(data), "seq_len": 16, "packing": False, "eval_fraction": 0.0},
        train={"batch_size": 1, "grad_accum": 2, "max_steps": 8, "eval_every": None},
    )
    assert Trainer(parse_config(config), echo=io.StringIO()).run() == EXIT_DONE
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert warnings and all("no assistant tokens" in line for line in warnings)
    assert warnings[-1].endswith(f"({len(warnings)} skipped so far)")
    lines = read_lines(Path(config["output_dir"]) / "metrics.jsonl")
    steps = [line for line in lines if line.event == "step"]
    assert [line.step for line in steps] == list(range(1, 9))
    assert all(line.loss is not None and line.loss > 0.5 for line in steps)
    seen = [0] + [line.tokens_seen for line in steps]
    assert all(after > before for before, after in itertools.pairwise(seen))


def test_data_with_no_assistant_token_in_any_row_is_refused(
    tmp_path: Path, tiny_config: Config
) -> None:
    data = tmp_path / "chat.jsonl"
    data.write_text(chat(" ".join(f"word{n}" for n in range(60)), "ok") * 8)
    config = tiny_config(
        data={"path": str(data), "seq_len": 16, "packing": False, "eval_fraction": 0.0},
        train={"batch_size": 1, "max_steps": 2},
    )
    with pytest.raises(DataError, match="no assistant tokens within seq_len 16"):
        Trainer(parse_config(config), echo=io.StringIO()).run()
