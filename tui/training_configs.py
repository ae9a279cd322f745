"""The training configs of the project being pushed: what ``n`` offers to launch.

A training config is a YAML file in ``configs/`` with ``output_dir`` and a ``train`` section
(``trainers.config``); host profiles and other YAML there are left out. Only a few top-level
keys are read, so a half-written config still shows up and the trainer reports what is wrong.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = "configs"
SIZE_LIMIT = 256 * 1024


@dataclass(frozen=True)
class TrainingConfig:
    """One config file, relative to the project folder (so the same path works on the host)."""

    path: str
    output_dir: str
    length: str  # "300 steps", "2 epochs"
    model: str
    lora: bool

    @property
    def command(self) -> str:
        module = "trainers.lora" if self.lora else "trainers.loop"
        return f"python -m {module} --config {shlex.quote(self.path)}"

    @property
    def job_name(self) -> str:
        """The name ``gputui train`` gives the same launch."""
        return f"train-{Path(self.path).stem}"

    @property
    def summary(self) -> str:
        return f"{self.model} · {self.length} · → {self.output_dir}"


def find_training_configs(project: Path) -> list[TrainingConfig]:
    """The training configs in ``project/configs`` (not below), sorted by name. Blocking."""
    folder = project / CONFIG_DIR
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    except OSError:
        return []
    found = []
    for file in files:
        config = _read(file, f"{CONFIG_DIR}/{file.name}")
        if config is not None:
            found.append(config)
    return found


def _read(file: Path, relative: str) -> TrainingConfig | None:
    try:
        if not file.is_file() or file.stat().st_size > SIZE_LIMIT:
            return None
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    output_dir, train = data.get("output_dir"), data.get("train")
    if not isinstance(output_dir, str) or not isinstance(train, dict):
        return None
    return TrainingConfig(
        path=relative,
        output_dir=output_dir,
        length=_length(train),
        model=_model(data.get("model")),
        lora=isinstance(data.get("lora"), dict),
    )


def _length(train: dict[str, Any]) -> str:
    steps, epochs = train.get("max_steps"), train.get("epochs")
    if isinstance(steps, int):
        return f"{steps:,} steps"
    if isinstance(epochs, (int, float)):
        return f"{epochs:g} epoch{'s' if epochs != 1 else ''}"
    return "length not set"


def _model(model: Any) -> str:
    if isinstance(model, dict):
        if isinstance(model.get("name_or_path"), str):
            return str(model["name_or_path"])
        if isinstance(model.get("arch"), dict):
            return "random-init Llama"
    return "model not set"
