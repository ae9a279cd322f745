"""The trainer's command line: ``python -m trainers.loop`` and ``python -m trainers.lora``.

    python -m trainers.loop --config FILE [--set SECTION.FIELD=VALUE ...]

Exit codes: 0 done (or already done), 143 stopped by a signal or notice after a checkpoint,
1 an expected error (one line on stderr), 2 a bad config. Torch is imported only once the config
is valid, so a typo costs a fraction of a second.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from trainers.config import ConfigError, add_overrides_argument, load_config
from trainers.loop import EXIT_PREEMPTED, Trainer
from trainers.modeling import TrainerError

EXIT_ERROR = 1
EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None, require_lora: bool = False) -> int:
    prog = "python -m trainers.lora" if require_lora else "python -m trainers.loop"
    parser = argparse.ArgumentParser(
        prog=prog, description="Train from a YAML config; run it again to resume."
    )
    parser.add_argument("--config", required=True, help="training config (YAML)")
    add_overrides_argument(parser)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"error: {exc.source}: {line}", file=sys.stderr)
        return EXIT_CONFIG
    if require_lora and config.lora is None:
        print(f"error: {args.config}: lora: this config has no lora section", file=sys.stderr)
        return EXIT_CONFIG
    from trainers.data import DataError

    try:
        return Trainer(config).run()
    except (TrainerError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a full disk, an output_dir that is a file, no permission
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR


def exit_with(code: int) -> None:
    """Exit; after a preemption skip the interpreter's teardown (about a second with torch loaded)
    because the checkpoint is committed and every file is closed."""
    if code == EXIT_PREEMPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
