"""The ``gputui`` command: the app with no verb, and verbs that mirror its screens.

Each verb group lives in its own module with a ``register(subparsers)`` function and sets a
``handler(args) -> int`` default. Expected failures (GputuiError) end as one line on stderr and
the error's exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from transfer.errors import GputuiError
from tui.cli import gpu, hosts, jobs, sync
from tui.cli.headless import parse_keys, parse_size

VERB_GROUPS = (hosts, jobs, gpu, sync)
DEFAULT_SIZE = (120, 40)


def version() -> str:
    try:
        return metadata.version("gputui")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gputui",
        description="Rent a GPU, train on it, bring the results home: one app and one CLI "
        "for the whole loop. With no verb, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"gputui {version()}")
    parser.add_argument("--host", metavar="NAME", help="open the app on this host's screen")
    parser.add_argument("--headless", action="store_true",
                        help="run the app without a terminal (for scripts and tests)")
    parser.add_argument("--size", type=parse_size, metavar="WxH",
                        help="screen size for --headless (default 120x40)")
    parser.add_argument("--keys", type=parse_keys, metavar="K1,K2,…",
                        help="keys to press in --headless mode, e.g. 'j,j,enter' "
                        "(Textual key names; 'wait:500' pauses 500 ms)")
    parser.add_argument("--screenshot", type=Path, metavar="FILE",
                        help="write the final screen of --headless: FILE.svg or FILE.txt")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    for group in VERB_GROUPS:
        group.register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 1
    app_only = [flag for flag, value in (("--size", args.size), ("--keys", args.keys),
                                         ("--screenshot", args.screenshot)) if value is not None]
    if app_only and not args.headless:
        return _usage(parser, f"{', '.join(app_only)} only work with --headless")
    if args.verb and (args.headless or args.host):
        return _usage(parser, "--headless and --host open the app; give them without a verb")
    if args.screenshot is not None and args.screenshot.suffix.lower() not in (".svg", ".txt"):
        return _usage(parser, "--screenshot must end in .svg or .txt")
    try:
        if args.verb:
            return int(args.handler(args))
        return open_app(args)
    except GputuiError as exc:
        sys.stderr.write(f"gputui: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("gputui: interrupted\n")
        return 130


def open_app(args: argparse.Namespace) -> int:
    from transfer.hosts import LOCAL, HostStore
    from tui.app import GputuiApp
    from tui.cli.headless import run_headless

    if args.host and args.host != LOCAL:
        HostStore().get(args.host)  # an unknown name fails here, with one line
    app = GputuiApp(start_host=args.host)
    if not args.headless:
        app.run()
        return app.return_code or 0
    try:
        return asyncio.run(
            run_headless(app, args.size or DEFAULT_SIZE, args.keys or [], args.screenshot)
        )
    except GputuiError:
        raise
    except Exception:
        traceback.print_exc()
        sys.stderr.write("gputui: the app raised an error (traceback above)\n")
        return 1


def _usage(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    sys.stderr.write(f"gputui: {message}\n")
    return 2
