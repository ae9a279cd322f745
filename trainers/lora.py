"""LoRA fine-tuning from a YAML config: ``python -m trainers.lora --config FILE [--set K=V ...]``.

The config's ``lora`` section says what to adapt; the run writes ``<output_dir>/adapter/``
(``adapter_model.safetensors``, ``adapter_config.json`` and the tokenizer), which
``PeftModel.from_pretrained`` loads on top of the base model. Starting the same command again
after a stop resumes from the newest valid checkpoint with the adapters still trainable.
QLoRA (``lora.load_in_4bit: true``) needs a CUDA GPU and bitsandbytes, and is refused on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from trainers.train_cli import main as train_main

    return train_main(argv, require_lora=True)


if __name__ == "__main__":
    from trainers.train_cli import exit_with

    exit_with(main())
