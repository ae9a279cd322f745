"""Shared pieces of the trainer tests: a config small enough that a run takes about a second."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHAT_DATA = ROOT / "configs" / "data" / "chat.jsonl"

TINY: dict[str, Any] = {
    "seed": 0,
    "model": {
        "arch": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_layers": 1,
            "num_heads": 2,
            "num_kv_heads": 1,
        }
    },
    "tokenizer": {"train": {"vocab_size": 400}},
    "data": {"path": str(CHAT_DATA), "seq_len": 64, "packing": True, "eval_fraction": 0.05},
    "lora": {
        "r": 4,
        "alpha": 8,
        "dropout": 0.1,
        "target_modules": ["q_proj", "v_proj", "down_proj"],
        "modules_to_save": ["embed_tokens", "lm_head"],
    },
    "train": {
        "batch_size": 4,
        "grad_accum": 2,
        "max_steps": 30,
        "eval_every": 10,
        "cpu_threads": 1,
    },
    "optimizer": {"lr": 5.0e-3, "warmup_steps": 3},
    "checkpoint": {"every_steps": 1000, "every_minutes": None, "keep_last": 2},
}


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def tiny_config_for(output_dir: Path, cache_dir: Path, **changes: Any) -> dict[str, Any]:
    """The tiny config writing to ``output_dir``, sharing a token cache, with sections merged in."""
    data = merged(TINY, {"output_dir": str(output_dir), "data": {"cache_dir": str(cache_dir)}})
    return merged(data, changes)


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_trainer(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m trainers.lora ARGS`` as a real process from the project root."""
    return subprocess.run(
        [sys.executable, "-m", "trainers.lora", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single line a refused run printed on stderr (asserting it failed without a traceback)."""
    assert done.returncode not in (0, None), done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]
