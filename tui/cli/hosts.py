"""``gputui hosts …``: list, add, remove, import, test and trust host profiles."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from transfer.errors import GputuiError, HostNotFound
from transfer.hosts import LOCAL, HostProfile, HostStore
from transfer.paths import known_hosts_file
from tui.cli.common import UsageError, out, print_json
from tui.text import NONE, terminal_safe

if TYPE_CHECKING:
    from transfer.probe import ProbeReport


# CLI flag → HostProfile field, for every field a person sets on the command line.
PROFILE_FLAGS: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    ("--host", "hostname", {"required": True, "metavar": "H"}, "address to connect to"),
    ("--user", "user", {"metavar": "U"}, "login name (default: ssh config, else yours)"),
    ("--port", "port", {"type": int, "metavar": "P"}, "SSH port (default 22)"),
    ("--key", "identity_file", {"metavar": "FILE"}, "private key file (default: agent and "
     "ssh defaults)"),
    ("--jump", "proxy_jump", {"metavar": "J"}, "jump host, as ssh -J takes it"),
    ("--workdir", "workdir", {"metavar": "DIR"}, "folder on the host for code and runs "
     "(default ~/gputui)"),
    ("--rate", "rate_usd_per_hour", {"type": float, "metavar": "USD_PER_HOUR"},
     "hourly cost in USD"),
    ("--env-activation", "env_activation", {"metavar": "CMD"},
     "run before each job, e.g. 'conda activate train'"),
    ("--setup", "setup_command", {"metavar": "CMD"}, "set-up command, e.g. "
     "'pip install -r requirements.txt'"),
    ("--provider", "provider", {"metavar": "NAME"}, "who rents it out: lambda, runpod, vast…"),
    ("--stop-command", "stop_command", {"metavar": "CMD"}, "command that stops the billing"),
    ("--tag", "tags", {"action": "append", "metavar": "TAG"}, "a tag (repeat for more)"),
)


def register(subparsers: Any) -> None:
    hosts = subparsers.add_parser(
        "hosts", help="manage host profiles", description="Manage host profiles (hosts.yaml)."
    )
    verbs = hosts.add_subparsers(dest="hosts_verb", metavar="VERB", required=True)

    listing = verbs.add_parser("list", help="list host profiles")
    listing.add_argument("--json", action="store_true", help="JSON for scripts")
    listing.set_defaults(handler=list_hosts)

    add = verbs.add_parser("add", help="add a host profile")
    add.add_argument("name", metavar="NAME", help="profile name: letters, digits, . _ -")
    for flag, field, options, text in PROFILE_FLAGS:
        add.add_argument(flag, dest=field, help=text, **options)
    add.add_argument("--replace", action="store_true", help="overwrite a profile of that name")
    add.set_defaults(handler=add_host)

    remove = verbs.add_parser("rm", help="remove a host profile")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(handler=remove_host)

    imports = verbs.add_parser(
        "import", help="import hosts from an ssh config",
        description="Import Host aliases from an OpenSSH client config (Include followed, "
        "wildcard patterns skipped).",
    )
    imports.add_argument("names", nargs="*", metavar="NAME", help="aliases to import")
    imports.add_argument("--all", action="store_true", help="import every alias")
    imports.add_argument("--ssh-config", type=Path, metavar="FILE",
                         help="config to read (default ~/.ssh/config)")
    imports.add_argument("--replace", action="store_true",
                         help="overwrite profiles that already exist")
    imports.add_argument("--json", action="store_true", help="print the imported profiles")
    imports.set_defaults(handler=import_hosts)

    test = verbs.add_parser("test", help="connect and report latency, OS, tools, GPUs, disk")
    test.add_argument("name", metavar="NAME")
    test.add_argument("--json", action="store_true", help="JSON for scripts")
    test.set_defaults(handler=test_host)

    trust = verbs.add_parser("trust", help="show a host's key fingerprint and trust it")
    trust.add_argument("name", metavar="NAME")
    trust.add_argument("--yes", action="store_true", help="trust without asking (scripts)")
    trust.set_defaults(handler=trust_host)


# -- list, add, rm ------------------------------------------------------------------------
def list_hosts(args: argparse.Namespace) -> int:
    hosts = HostStore().load()
    if args.json:
        print_json([host.model_dump(mode="json") for host in hosts])
        return 0
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "ADDRESS", "PROVIDER", "$/H", "WORKDIR", "TAGS"):
        table.add_column(column, justify="right" if column == "$/H" else "left")
    for host in hosts:
        cells = (
            host.name,
            host.address,
            host.provider or NONE,
            f"{host.rate_usd_per_hour:.2f}" if host.rate_usd_per_hour else NONE,
            host.workdir,
            ", ".join(host.tags) or NONE,
        )
        table.add_row(*(Text(terminal_safe(cell)) for cell in cells))  # "[a]" stays as typed
    out().print(table)
    return 0


def add_host(args: argparse.Namespace) -> int:
    if args.name == LOCAL:
        raise UsageError("'local' is the built-in host for this machine; pick another name")
    fields = {field: getattr(args, field) for _flag, field, _o, _t in PROFILE_FLAGS}
    data = {key: value for key, value in fields.items() if value is not None}
    host = validated_profile({"name": args.name, **data})

    def add(hosts: list[HostProfile]) -> list[HostProfile]:
        if any(h.name == host.name for h in hosts) and not args.replace:
            raise UsageError(
                f"a host named {host.name!r} already exists; pass --replace to overwrite"
            )
        return [h for h in hosts if h.name != host.name] + [host]

    HostStore().update(add)
    out().print(f"added {host.name} ({host.address})", markup=False)
    return 0


def validated_profile(data: dict[str, Any]) -> HostProfile:
    """The profile, or one line naming every field that is wrong and why."""
    try:
        return HostProfile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_flag_of(str(err['loc'][0]) if err['loc'] else 'name')}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise UsageError(f"invalid host {data.get('name')!r}: {problems}") from None


def _flag_of(field: str) -> str:
    flags = {f: flag for flag, f, _o, _t in PROFILE_FLAGS}
    return flags.get(field, "NAME" if field == "name" else field)


def remove_host(args: argparse.Namespace) -> int:
    HostStore().remove(args.name)
    out().print(f"removed {args.name}")
    return 0


# -- import ---------------------------------------------------------------------------------
def import_hosts(args: argparse.Namespace) -> int:
    from transfer.sshconfig import import_ssh_config

    found = import_ssh_config(args.ssh_config)
    by_name = {host.name: host for host in found}
    if not args.names and not args.all:
        names = ", ".join(by_name) or "none"
        raise UsageError(f"name the hosts to import, or pass --all; found: {names}")
    missing = [name for name in args.names if name not in by_name]
    if missing:
        raise HostNotFound(
            f"not in the ssh config: {', '.join(missing)}; found: {', '.join(by_name) or 'none'}"
        )
    chosen = found if args.all else [by_name[name] for name in dict.fromkeys(args.names)]
    imported: list[HostProfile] = []
    skipped: list[str] = []

    def add_chosen(hosts: list[HostProfile]) -> list[HostProfile]:
        imported.clear()
        skipped.clear()
        existing = {host.name for host in hosts}
        for host in chosen:
            if host.name == LOCAL or (host.name in existing and not args.replace):
                skipped.append(host.name)
                continue
            hosts = [h for h in hosts if h.name != host.name] + [host]
            imported.append(host)
        return hosts

    HostStore().update(add_chosen)
    if args.json:
        print_json([host.model_dump(mode="json") for host in imported])
    else:
        console = out()
        for host in imported:
            console.print(f"imported {host.name} ({host.address})")
        if not imported:
            console.print("nothing imported")
    if skipped:
        sys.stderr.write(
            f"gputui: skipped (already exist; pass --replace to overwrite): {', '.join(skipped)}\n"
        )
    return 0


# -- test -------------------------------------------------------------------------------------
def test_host(args: argparse.Namespace) -> int:
    from transfer.probe import probe

    host = HostStore().get(args.name)
    try:
        report = asyncio.run(probe(host))
    except GputuiError as exc:
        if args.json:
            print_json({"host": host.name, "ok": False, "error": str(exc),
                        "error_type": type(exc).__name__})
        raise
    if args.json:
        print_json({"ok": True, **report.to_json()})
        return 0
    out().print(_report_table(host, report))
    return 0


def _report_table(host: HostProfile, report: ProbeReport) -> Table:
    """Every value the host sent is shown as plain text with its control characters escaped:
    a GPU named ``[link=…]`` or ``\x1b]52;…`` prints as those characters, on a terminal or not."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()

    def row(label: str, value: str) -> None:
        table.add_row(label, Text(terminal_safe(value)))

    row("host", f"{host.name} ({host.address})")
    row("latency", f"{report.latency_ms:.1f} ms")
    row("os", report.os or NONE)
    row("python", report.python or "not found")
    for tool in ("tmux", "rsync", "nvidia_smi"):
        row(tool.replace("_", "-"), "yes" if getattr(report, tool) else "no")
    gpus = [
        f"{gpu.name}"
        + (f", {gpu.memory_mib} MiB" if gpu.memory_mib else "")
        + (f", driver {gpu.driver}" if gpu.driver else "")
        for gpu in report.gpus
    ]
    table.add_row("gpus", Text("\n".join(terminal_safe(gpu) for gpu in gpus) or "none"))
    row("workdir", report.workdir)
    free = report.disk_free_bytes
    row("disk free", f"{free / 2**30:.1f} GiB" if free is not None else "N/A")
    return table


# -- trust -----------------------------------------------------------------------------------
def trust_host(args: argparse.Namespace) -> int:
    """Show the key (and the CA of its certificate, if any) and store the key itself: a CA that
    is not trusted yet stays so, trusting one host never trusts every host it signed."""
    from transfer.connect import link_class
    from transfer.hostkeys import fetch_host_key, key_status, refused, trust_host_key

    host = HostStore().get(args.name)
    if not link_class(host).has_host_key:
        raise UsageError(f"{host.name!r} is this machine; there is no host key to trust")
    info = asyncio.run(fetch_host_key(host))
    status = key_status(host, info)
    console = out()
    if info.host and info.host != host.name:
        console.print(
            f"the jump host {info.host} (on the way to {host.name}) presents this key:",
            markup=False,
        )
    else:
        console.print(f"{host.name} ({host.address}) presents this host key:", markup=False)
    console.print(f"  {info.key_type} {info.fingerprint}", markup=False)
    if info.ca_fingerprint:
        console.print(
            f"  in a certificate signed by the CA {info.ca_key_type} {info.ca_fingerprint}",
            markup=False,
        )
    if status == "trusted":
        console.print("already trusted")
        return 0
    if status != "unknown":
        raise refused(host, info)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "not trusted: no terminal to ask on; compare the fingerprint with your "
                "provider's, then run again with --yes"
            )
        answer = input("Trust this key? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise GputuiError("not trusted")
    trust_host_key(host, info)
    console.print(f"trusted; stored in {known_hosts_file()}")
    return 0
