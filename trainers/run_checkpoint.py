"""What a run's checkpoint holds: the weights, the optimiser, every RNG, the data cursor, counters.

``checkpoint.py`` commits a folder of files durably; this module decides which files those are
and reads them back, so that a resumed run continues exactly where the committed step ended. The
weights are the adapter alone for a LoRA run (what ``PeftModel.from_pretrained`` loads) and the
whole model otherwise; the final export writes the same weight files.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainers import checkpoint as ckpt
from trainers.config import TrainConfig
from trainers.modeling import TrainerError
from trainers.rng import restore_rng

if TYPE_CHECKING:
    import torch

    from trainers.data import BatchSampler

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
STATE_FILE = "trainer_state.json"


@dataclass
class RunState:
    """The counters a checkpoint carries besides tensors."""

    run_id: str
    resume_idx: int = 0
    step: int = 0
    tokens_seen: int = 0
    elapsed: float = 0.0
    cursor: dict[str, int] = field(default_factory=dict)
    skipped_batches: int = 0


def library_versions() -> dict[str, str]:
    """The versions a checkpoint was written with: exact resume holds only on the same ones."""
    import numpy
    import peft
    import safetensors
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": numpy.__version__,
    }


def weight_writers(model: Any, lora: bool) -> list[ckpt.Writer]:
    """Writers of the trained weights: the adapter for a LoRA run, else the whole model."""
    from safetensors.torch import save_file, save_model

    if lora:
        from peft import get_peft_model_state_dict

        def write_adapter(folder: Path) -> Sequence[str]:
            state = get_peft_model_state_dict(model)
            save_file(
                {k: v.detach().contiguous() for k, v in state.items()},
                str(folder / ADAPTER_FILES[0]),
                metadata={"format": "pt"},
            )
            model.peft_config["default"].save_pretrained(str(folder))
            return list(ADAPTER_FILES)

        return [write_adapter]

    def write_model(folder: Path) -> Sequence[str]:
        save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return ["model.safetensors"]

    return [write_model]


@dataclass
class RunPayload:
    """Saves and loads the checkpoints of one start of a run: its model, optimiser and device,
    and what the state file records about the run besides its counters."""

    config: TrainConfig
    model: Any
    optimizer: torch.optim.Optimizer
    device: torch.device
    total_steps: int
    fingerprint: str
    versions: dict[str, str]

    def save(self, checkpoints: Path, state: RunState, rng: dict[str, Any]) -> ckpt.Committed:
        """Commit ``state`` with the current weights, optimiser and the RNGs ``rng``."""
        import torch

        def write_optimizer(folder: Path) -> Sequence[str]:
            torch.save(self.optimizer.state_dict(), folder / "optimizer.pt")
            return ["optimizer.pt"]

        def write_rng(folder: Path) -> Sequence[str]:
            torch.save(rng, folder / "rng.pt")
            return ["rng.pt"]

        def write_state(folder: Path) -> Sequence[str]:
            payload = {
                "run_id": state.run_id,
                "resume_idx": state.resume_idx,
                "step": state.step,
                "total_steps": self.total_steps,
                "tokens_seen": state.tokens_seen,
                "elapsed": state.elapsed,
                "cursor": state.cursor,
                "skipped_batches": state.skipped_batches,
                "seed": self.config.seed,
                "config_fingerprint": self.fingerprint,
                "config": self.config.model_dump(mode="json"),
                "versions": self.versions,
            }
            (folder / STATE_FILE).write_text(json.dumps(payload, indent=1))
            return [STATE_FILE]

        lora = self.config.lora is not None
        writers = [*weight_writers(self.model, lora), write_optimizer, write_rng, write_state]
        return ckpt.save_checkpoint(
            checkpoints,
            state.step,
            writers,
            self.config.checkpoint.keep_last,
            {"run_id": state.run_id},
        )

    def load(self, folder: Path, sampler: BatchSampler) -> tuple[RunState, str | None]:
        """Restore the weights, optimiser, data position and RNGs of ``folder``; the saved state
        and the fingerprint of the config it was written with."""
        import torch
        from safetensors.torch import load_file, load_model

        from trainers.data import DataCursor

        if self.config.lora is not None:
            from peft import set_peft_model_state_dict

            weights = load_file(str(folder / ADAPTER_FILES[0]), device=str(self.device))
            result: Any = set_peft_model_state_dict(self.model, weights)
            if result.unexpected_keys:
                raise TrainerError(
                    f"{folder}: adapter does not fit this model ({result.unexpected_keys[0]})"
                )
        else:
            load_model(self.model, str(folder / "model.safetensors"), device=str(self.device))
        optimizer_state = torch.load(folder / "optimizer.pt", map_location=self.device)
        self.optimizer.load_state_dict(optimizer_state)
        saved = json.loads((folder / STATE_FILE).read_text())
        state = RunState(
            run_id=saved["run_id"],
            resume_idx=saved["resume_idx"],
            step=saved["step"],
            tokens_seen=saved["tokens_seen"],
            elapsed=saved["elapsed"],
            cursor=saved["cursor"],
            skipped_batches=saved.get("skipped_batches", 0),
        )
        sampler.cursor = DataCursor.from_dict(state.cursor)
        restore_rng(torch.load(folder / "rng.pt"))  # after the data position, as it must be
        return state, saved.get("config_fingerprint")
