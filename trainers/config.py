"""The training config: one YAML file, validated with pydantic before anything heavy is imported.

A config names the model (a local folder, a hub id, or an inline Llama architecture that is built
with random weights), the tokenizer (the model's own, or one trained on the data with
``tokenizers``), the chat data, LoRA, the batch and optimiser, checkpoints and preemption. Relative
paths are relative to the working directory, so that the same command works from the project root
on a laptop and on a GPU host.

Every bad field is reported once, as ``section.field: what is wrong (got VALUE)``, so a typo in a
long file costs one read of the error, not a traceback. Importing this module does not import torch.

``python -m trainers.config CONFIG [--set SECTION.FIELD=VALUE ...]`` only validates: nothing on
stdout and exit 0 when the config is valid, its one-line summary on stderr and exit 2 when not.
The laptop runs it before a push, so a typo fails before anything is sent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(Exception):
    """A config that cannot be used; ``errors`` holds one line per bad field."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__("\n".join(f"{source}: {line}" for line in errors))

    def summary(self) -> str:
        """The first error as one line, with how many more there are."""
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return f"{self.source}: {self.errors[0]}{more}"


class _Section(BaseModel):
    # inf and NaN pass range checks like ``gt=0`` or turn into NaN weights: no field takes them.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LlamaArch(_Section):
    """A Llama-shaped model built with random weights: the tiny model of dev runs and tests."""

    # Far above any real Llama; bounded so that counting the parameters stays quick and exact.
    hidden_size: int = Field(default=64, gt=0, le=2**20)
    intermediate_size: int = Field(default=176, gt=0, le=2**22)
    num_layers: int = Field(default=2, gt=0, le=1024)
    num_heads: int = Field(default=4, gt=0)
    num_kv_heads: int = Field(default=2, gt=0)
    tie_embeddings: bool = False
    rope_theta: float = Field(default=10000.0, gt=0)

    @model_validator(mode="after")
    def _heads_divide(self) -> LlamaArch:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}"
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}"
            )
        return self


class ModelConfig(_Section):
    name_or_path: str | None = Field(default=None, min_length=1)
    arch: LlamaArch | None = None
    revision: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        if (self.name_or_path is None) == (self.arch is None):
            raise ValueError("give exactly one of name_or_path (a folder or hub id) or arch")
        return self


class TokenizerTraining(_Section):
    """Train a byte-level BPE on the config's own data (no download)."""

    vocab_size: int = Field(default=1024, ge=300, le=65536)


class TokenizerConfig(_Section):
    name_or_path: str | None = Field(default=None, min_length=1)
    train: TokenizerTraining | None = None

    @model_validator(mode="after")
    def _at_most_one_source(self) -> TokenizerConfig:
        if self.name_or_path is not None and self.train is not None:
            raise ValueError("give at most one of name_or_path or train")
        return self


class DataConfig(_Section):
    path: str = Field(min_length=1)
    seq_len: int = Field(default=512, ge=8, le=1_048_576)
    packing: bool = True
    eval_fraction: float = Field(default=0.05, ge=0.0, lt=1.0)
    cache_dir: str | None = None


class LoraSettings(_Section):
    r: int = Field(default=16, gt=0)
    alpha: int = Field(default=32, gt=0)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1
    )
    modules_to_save: list[str] = Field(default_factory=list)
    load_in_4bit: bool = False


class TrainSettings(_Section):
    batch_size: int = Field(default=8, gt=0)
    grad_accum: int = Field(default=1, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    epochs: float | None = Field(default=None, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False
    grad_clip: float | None = Field(default=1.0, gt=0)
    eval_every: int | None = Field(default=None, gt=0)
    deterministic: bool = True
    cpu_threads: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_length(self) -> TrainSettings:
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of max_steps or epochs")
        return self


class OptimizerSettings(_Section):
    name: Literal["adamw"] = "adamw"
    lr: float = Field(default=2e-4, gt=0, le=1.0)
    weight_decay: float = Field(default=0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    min_lr_ratio: float = Field(default=0.1, ge=0.0, le=1.0)

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in value):
            raise ValueError("both betas must be in [0, 1)")
        return value


class CheckpointSettings(_Section):
    every_steps: int | None = Field(default=100, gt=0)
    every_minutes: float | None = Field(default=10.0, gt=0)
    keep_last: int = Field(default=3, gt=0)


class PreemptionSettings(_Section):
    """Where to poll for a provider's interruption notice; null polls nothing."""

    spot_notice_url: str | None = None
    poll_seconds: float = Field(default=5.0, gt=0)

    @field_validator("spot_notice_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class TrainConfig(_Section):
    output_dir: str = Field(min_length=1)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)  # the range numpy's np.random.seed takes
    model: ModelConfig
    tokenizer: TokenizerConfig = TokenizerConfig()
    data: DataConfig
    lora: LoraSettings | None = None
    train: TrainSettings
    optimizer: OptimizerSettings = OptimizerSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    preemption: PreemptionSettings = PreemptionSettings()

    @model_validator(mode="after")
    def _tokenizer_for_random_model(self) -> TrainConfig:
        if self.model.arch is not None and self.tokenizer == TokenizerConfig():
            raise ValueError(
                "a model built from arch has no tokenizer of its own: set tokenizer.train "
                "or tokenizer.name_or_path"
            )
        return self

    @property
    def cache_dir(self) -> Path:
        return Path(self.data.cache_dir or Path(self.output_dir) / "cache")

    def fingerprint(self) -> str:
        """A short hash of everything the config says, stored in each checkpoint."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "config"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown field"
    if kind == "missing":
        return f"{where}: required field is missing"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    shown = error.get("input")
    if kind != "value_error" and not isinstance(shown, dict | list):
        return f"{where}: {message} (got {shown!r})"
    return f"{where}: {message}"


def parse_config(data: Any, source: str = "config") -> TrainConfig:
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must hold a mapping of sections"])
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(error) for error in exc.errors()]) from None


def _parse_yaml(text: str) -> Any:
    """The YAML value of ``text``; ValueError with a one-line reason when it is not YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{where}not valid YAML: {problem}") from None
    except RecursionError:
        raise ValueError("not valid YAML: nested too deeply") from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.field=value`` overrides (values parsed as YAML) to a raw config mapping."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", [f"{item!r}: expected section.field=value"])
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError("--set", [f"{key}: {part} is not a section"])
            node = child
        try:
            node[leaf] = _parse_yaml(raw)
        except ValueError as exc:
            raise ConfigError("--set", [f"{key}: {str(exc).removeprefix('line 1: ')}"]) from None
    return data


def _mark_overridden(errors: list[str], overrides: list[str]) -> list[str]:
    """Say which bad fields came from ``--set``, so nobody looks for them in the file."""
    keys = [item.partition("=")[0] for item in overrides]

    def came_from_set(line: str) -> bool:
        field = line.partition(":")[0]
        return any(f"{field}.".startswith(f"{key}.") or key.startswith(f"{field}.") for key in keys)

    return [f"{line} (from --set)" if came_from_set(line) else line for line in errors]


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(source, [f"cannot read: {exc.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(source, [f"line {line}: not valid UTF-8"]) from None
    try:
        data = _parse_yaml(text)
    except ValueError as exc:
        raise ConfigError(source, [str(exc)]) from None
    if not (isinstance(data, dict) and overrides):
        return parse_config(data, source)
    data = apply_overrides(data, overrides)
    try:
        return parse_config(data, source)
    except ConfigError as exc:
        raise ConfigError(source, _mark_overridden(exc.errors, overrides)) from None


def add_overrides_argument(parser: argparse.ArgumentParser) -> None:
    """``--set SECTION.FIELD=VALUE``, repeatable: one flag for training and for checking."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override one config field (repeatable), e.g. --set train.max_steps=50",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Validate a config without training; the exit status says whether it is valid."""
    parser = argparse.ArgumentParser(
        prog="python -m trainers.config",
        description="Check a training config: silent and exit 0 when valid, one line on stderr "
        "and exit 2 when not.",
    )
    parser.add_argument("config", help="training config (YAML)")
    add_overrides_argument(parser)
    args = parser.parse_args(argv)
    try:
        load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(exc.summary(), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
