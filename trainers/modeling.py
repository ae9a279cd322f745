"""Loading the tokenizer and model a config names, and wrapping the model with LoRA (peft).

A model built from an inline architecture gets random weights from the run seed; its weights are
saved once under ``<output_dir>/base`` and loaded from there on every later start, so an adapter
always has the base it was trained against and ``PeftModel.from_pretrained`` can load the pair.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainers.config import LlamaArch, TrainConfig

if TYPE_CHECKING:
    import torch
    from transformers import LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase


class TrainerError(Exception):
    """An expected failure with a one-line explanation (bad model path, no GPU for QLoRA...)."""


@dataclass(frozen=True)
class Placement:
    device: torch.device
    autocast_dtype: torch.dtype | None
    weights_dtype: torch.dtype


def resolve_placement(config: TrainConfig) -> Placement:
    import torch

    wanted = config.train.device
    has_cuda = torch.cuda.is_available()
    if wanted == "cuda" and not has_cuda:
        raise TrainerError("train.device is cuda, but torch sees no CUDA GPU on this host")
    device = torch.device("cuda" if wanted == "cuda" or (wanted == "auto" and has_cuda) else "cpu")
    if config.lora is not None and config.lora.load_in_4bit and device.type != "cuda":
        raise TrainerError(
            "QLoRA (lora.load_in_4bit) needs a CUDA GPU and this run is on the CPU; "
            "set lora.load_in_4bit: false to train LoRA in full precision"
        )
    precision = config.train.precision
    if precision == "auto":
        bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
        precision = "bf16" if bf16_ok else "fp32"
    autocast = torch.bfloat16 if precision == "bf16" else None
    # A frozen LoRA base can live in bf16; weights that train keep fp32 masters.
    frozen_base = config.lora is not None
    weights = torch.bfloat16 if (autocast is not None and frozen_base) else torch.float32
    return Placement(device, autocast, weights)


def load_tokenizer(config: TrainConfig) -> PreTrainedTokenizerBase:
    if config.tokenizer.train is not None:
        from trainers.data import require_data_file
        from trainers.tiny import cached_chat_tokenizer

        require_data_file(Path(config.data.path))
        config.cache_dir.mkdir(parents=True, exist_ok=True)
        return cached_chat_tokenizer(
            Path(config.data.path), config.tokenizer.train.vocab_size, config.cache_dir
        )
    from transformers import AutoTokenizer

    source = config.tokenizer.name_or_path or config.model.name_or_path
    assert source is not None
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=config.model.revision)
    except (OSError, ValueError) as exc:
        raise TrainerError(f"cannot load tokenizer {source!r}: {_first_line(exc)}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise TrainerError(f"tokenizer {source!r} has no chat template to render conversations")
    return tokenizer


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def out_of_memory_is_an_error(doing: str) -> Iterator[None]:
    """Turn a failed allocation, on the host or the GPU, into a one-line TrainerError."""
    import torch

    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        text = str(exc)
        failed_allocation = isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError) or (
            "can't allocate memory" in text or "out of memory" in text.lower()
        )
        if not failed_allocation:
            raise
        reason = re.sub(r"^\[enforce fail[^\]]*\]\s*(err == 0\.\s*)?", "", _first_line(exc))
        reason = ". ".join(reason.split(". ")[:3])  # what was asked and what is free, not advice
        raise TrainerError(
            f"out of memory while {doing}: {reason or 'allocation failed'}; "
            "use a smaller model, train.batch_size or data.seq_len"
        ) from None


def _gib(size: float) -> str:
    return f"{size / 2**30:,.1f}"


def _arch_parameters(arch: LlamaArch, vocab_size: int, max_positions: int) -> int:
    """The parameter count of the arch, from a model built on the meta device (no memory)."""
    import torch

    from trainers.tiny import build_llama

    with torch.device("meta"):
        model = build_llama(arch, vocab_size, max_positions)
    return sum(param.numel() for param in model.parameters())


def check_arch_fits(
    arch: LlamaArch, vocab_size: int, max_positions: int, placement: Placement
) -> None:
    """Refuse an arch whose weights alone exceed the memory available now, before allocating them.

    The model is built in fp32 in host memory, then moved to its device in its weights' dtype.
    """
    import psutil
    import torch

    params = _arch_parameters(arch, vocab_size, max_positions)
    needs = [(params * 4, "fp32", "memory", psutil.virtual_memory().available)]
    if placement.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(placement.device)
        dtype = placement.weights_dtype
        name = str(dtype).removeprefix("torch.")
        needs.append((params * dtype.itemsize, name, "GPU memory", free))
    for need, dtype_name, where, available in needs:
        if need > available:
            raise TrainerError(
                f"model.arch: the model does not fit: {params:,} parameters need "
                f"{_gib(need)} GiB in {dtype_name}, and this host has {_gib(available)} GiB of "
                f"{where} available"
            )


def _build_base(
    config: TrainConfig, tokenizer: PreTrainedTokenizerBase, placement: Placement, folder: Path
) -> None:
    """Build the arch with random weights from the seed and save it with the tokenizer."""
    import torch

    from trainers.tiny import build_llama

    assert config.model.arch is not None
    vocab, positions = len(tokenizer), config.data.seq_len
    check_arch_fits(config.model.arch, vocab, positions, placement)
    torch.manual_seed(config.seed)
    with out_of_memory_is_an_error("building the model"):
        fresh: LlamaForCausalLM = build_llama(config.model.arch, vocab, positions)
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    scratch = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    fresh.save_pretrained(str(scratch))
    tokenizer.save_pretrained(str(scratch))
    os.replace(scratch, folder)


def load_base_model(
    config: TrainConfig, tokenizer: PreTrainedTokenizerBase, placement: Placement
) -> PreTrainedModel:
    """The model before LoRA: pretrained, or random-init from the arch (seeded, then saved)."""
    import torch
    from transformers import AutoModelForCausalLM

    if config.model.arch is not None:
        base_dir = Path(config.output_dir) / "base"
        if not (base_dir / "config.json").is_file():
            _build_base(config, tokenizer, placement, base_dir)
        source: str = str(base_dir)
    else:
        assert config.model.name_or_path is not None
        source = config.model.name_or_path
    kwargs: dict[str, Any] = {"dtype": placement.weights_dtype, "attn_implementation": "sdpa"}
    if config.model.revision and config.model.arch is None:
        kwargs["revision"] = config.model.revision
    if config.lora is not None and config.lora.load_in_4bit:
        kwargs["quantization_config"] = _four_bit_config()
        kwargs["device_map"] = {"": placement.device.index or 0}
    try:
        with out_of_memory_is_an_error(f"loading model {source!r}"):
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise TrainerError(f"cannot load model {source!r}: {_first_line(exc)}") from None
    if "quantization_config" not in kwargs:
        with out_of_memory_is_an_error(f"moving the model to {placement.device}"):
            torch.nn.Module.to(model, placement.device)
    model.config.use_cache = False
    return model


def _four_bit_config() -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise TrainerError(
            "QLoRA needs the bitsandbytes package: pip install bitsandbytes"
        ) from None
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def wrap_lora(model: PreTrainedModel, config: TrainConfig) -> Any:
    """The model with LoRA adapters; only adapter (and modules_to_save) weights train."""
    from peft import LoraConfig, get_peft_model

    assert config.lora is not None
    settings = config.lora
    if settings.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lora = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        modules_to_save=list(settings.modules_to_save) or None,
        task_type="CAUSAL_LM",
    )
    try:
        wrapped = get_peft_model(model, lora)
    except ValueError as exc:
        raise TrainerError(f"lora: {_first_line(exc)}") from None
    base_path = str(Path(config.output_dir) / "base") if config.model.arch is not None else None
    wrapped.peft_config["default"].base_model_name_or_path = base_path or config.model.name_or_path
    return wrapped
