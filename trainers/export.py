"""The run's result: the final adapter (or model) with its tokenizer, replaced in one rename.

A reader of ``<output_dir>/adapter`` (or ``model``) finds the old result or the new one, never a
half-written folder: the files go to a scratch folder first, which is renamed over the old one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from trainers.config import TrainConfig
from trainers.run_checkpoint import weight_writers


def export_result(output: Path, config: TrainConfig, model: Any, tokenizer: Any) -> Path:
    """Write ``<output>/adapter`` for a LoRA run, else ``<output>/model``; return its path."""
    lora = config.lora is not None
    name = "adapter" if lora else "model"
    final = output / name
    scratch = output / f"{name}.tmp-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    for write in weight_writers(model, lora):
        write(scratch)
    if not lora:
        model.config.save_pretrained(str(scratch))
    tokenizer.save_pretrained(str(scratch))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(scratch, final)
    return final
