"""A tokenizer trained on the run's own chat data and a random-init Llama: models with no download.

The dev config and the tests use these so that a full fine-tuning run (tokenize, pack, train,
checkpoint, resume, write an adapter) happens on a laptop CPU in a minute. The tokenizer is a
byte-level BPE with a ChatML template; it is trained once per data file and vocabulary size and
cached, so every start of a run sees the same token ids.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    from trainers.config import LlamaArch

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>")


def _chat_texts(data_path: Path) -> Iterator[str]:
    yield "system\nuser\nassistant\n"
    # Bad lines are skipped here; reading the conversations afterwards names them.
    with data_path.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                continue
            for message in record.get("messages", []) if isinstance(record, dict) else []:
                if isinstance(message, dict) and isinstance(message.get("content"), str):
                    yield message["content"]


def train_chat_tokenizer(data_path: Path, vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on the message texts of a chat JSONL file."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_chat_texts(data_path), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|endoftext|>"],
    )
    wrapped.chat_template = CHATML_TEMPLATE
    return wrapped


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_chat_tokenizer(
    data_path: Path, vocab_size: int, cache_dir: Path
) -> PreTrainedTokenizerFast:
    """The tokenizer for this data and vocabulary size, trained on first use and then reused."""
    from transformers import PreTrainedTokenizerFast

    key = hashlib.sha256(f"{_file_digest(data_path)}:{vocab_size}:v1".encode()).hexdigest()[:16]
    folder = cache_dir / f"tokenizer-{key}"
    if not (folder / "tokenizer.json").is_file():
        tokenizer = train_chat_tokenizer(data_path, vocab_size)
        scratch = cache_dir / f"tokenizer-{key}.tmp-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        tokenizer.save_pretrained(str(scratch))
        try:
            scratch.rename(folder)
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)  # another process got there first
    loaded = PreTrainedTokenizerFast.from_pretrained(str(folder))
    if not loaded.chat_template:
        loaded.chat_template = CHATML_TEMPLATE
    return loaded


def build_llama(arch: LlamaArch, vocab_size: int, max_positions: int) -> LlamaForCausalLM:
    """A Llama with random weights; the caller seeds torch first so the weights repeat."""
    from transformers import LlamaConfig, LlamaForCausalLM

    settings: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": arch.hidden_size,
        "intermediate_size": arch.intermediate_size,
        "num_hidden_layers": arch.num_layers,
        "num_attention_heads": arch.num_heads,
        "num_key_value_heads": arch.num_kv_heads,
        "max_position_embeddings": max_positions,
        "tie_word_embeddings": arch.tie_embeddings,
        "rope_theta": arch.rope_theta,
        "attn_implementation": "sdpa",
    }
    return LlamaForCausalLM(LlamaConfig(**settings))
