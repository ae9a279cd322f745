"""``python -m transfer.keeper --socket PATH --idle S``: started by ``gputui push``/``pull``."""

from __future__ import annotations

import argparse
from pathlib import Path

from transfer.asyncssh_import import import_asyncssh

import_asyncssh()  # before the server's imports pull it in the slow way

from transfer.keeper.server import run  # noqa: E402

parser = argparse.ArgumentParser(prog="python -m transfer.keeper", description=__doc__)
parser.add_argument("--socket", type=Path, required=True)
parser.add_argument("--idle", type=float, required=True, help="seconds to wait for a command")
args = parser.parse_args()
raise SystemExit(run(args.socket, args.idle))
