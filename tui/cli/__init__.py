"""The ``gputui`` command: the app with no verb, and verbs that mirror its screens.

Each verb group lives in its own module with a ``register(subparsers)`` function and sets a
``handler(args) -> int`` default. Expected failures (GputuiError) end as one line on stderr and
the error's exit code, its control characters shown escaped (a message may quote what a host
sent); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transfer.errors import GputuiError

VERB_GROUPS = ("hosts", "jobs", "train", "gpu", "sync")
# Verbs whose group is imported alone when they come first: `gputui push` does not pay for
# the imports of the app, the telemetry and the job verbs (a no-op push is timed against rsync).
QUICK_VERBS = {"push": "sync", "pull": "sync"}
DEFAULT_SIZE = (120, 40)


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("gputui")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class _Version(argparse.Action):
    """``--version``, looked up only when asked for (the lookup scans the installed packages)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        sys.stdout.write(f"gputui {version()}\n")
        parser.exit()


def _parse_size(text: str) -> tuple[int, int]:
    from tui.cli.headless import parse_size

    return parse_size(text)


def _parse_keys(text: str) -> list[str]:
    from tui.cli.headless import parse_keys

    return parse_keys(text)


def build_parser(groups: Sequence[str] = VERB_GROUPS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gputui",
        description="Rent a GPU, train on it, bring the results home: one app and one CLI "
        "for the whole loop. With no verb, opens the app.",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument("--host", metavar="NAME", help="open the app on this host's screen")
    parser.add_argument("--demo", action="store_true",
                        help="open the app on the built-in `local` host with the demo project "
                        "(configs/dev.yaml) ready to push and train; what `make run` does")
    parser.add_argument("--headless", action="store_true",
                        help="run the app without a terminal (for scripts and tests)")
    parser.add_argument("--size", type=_parse_size, metavar="WxH",
                        help="screen size for --headless (default 120x40)")
    parser.add_argument("--keys", type=_parse_keys, metavar="K1,K2,…",
                        help="keys to press in --headless mode, e.g. 'j,j,enter' "
                        "(Textual key names; 'wait:500' pauses 500 ms)")
    parser.add_argument("--screenshot", type=Path, metavar="FILE",
                        help="write the final screen of --headless: FILE.svg or FILE.txt")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    for group in groups:
        importlib.import_module(f"tui.cli.{group}").register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    quick = QUICK_VERBS.get(given[0]) if given else None
    parser = build_parser((quick,) if quick else VERB_GROUPS)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 1
    app_only = [flag for flag, value in (("--size", args.size), ("--keys", args.keys),
                                         ("--screenshot", args.screenshot)) if value is not None]
    if app_only and not args.headless:
        return _usage(parser, f"{', '.join(app_only)} only work with --headless")
    if args.verb and (args.headless or args.host or args.demo):
        return _usage(parser, "--headless, --host and --demo open the app; give them without a "
                      "verb")
    if args.demo and args.host not in (None, "local"):
        return _usage(parser, "--demo opens the `local` host; leave out --host")
    if args.screenshot is not None and args.screenshot.suffix.lower() not in (".svg", ".txt"):
        return _usage(parser, "--screenshot must end in .svg or .txt")
    try:
        if args.verb:
            return int(args.handler(args))
        return open_app(args)
    except GputuiError as exc:
        from tui.cli.common import print_error

        print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("gputui: interrupted\n")
        return 130


def open_app(args: argparse.Namespace) -> int:
    import asyncio

    from transfer.hosts import LOCAL, HostStore
    from tui.app import GputuiApp
    from tui.cli.headless import run_headless

    if args.demo:
        from tui.cli.demo import prepare_demo

        prepare_demo()
        args.host = LOCAL
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
