"""Importing asyncssh without its slow library probes, for the command and the keeper."""

from __future__ import annotations

import os
import sys


def import_asyncssh() -> None:
    """Import asyncssh without the ``ctypes.util.find_library`` calls it makes for liboqs and
    nettle, which run ``ldconfig`` and ``gcc`` (tens of ms of every push and pull); the library
    folders are looked at directly instead, so installed libraries are still found."""
    if "asyncssh" in sys.modules:
        return
    import ctypes.util

    original = ctypes.util.find_library

    def find(name: str) -> str | None:
        return _find_library(name) if name in _ASYNCSSH_LIBRARIES else original(name)

    ctypes.util.find_library = find
    try:
        import asyncssh  # noqa: F401
    finally:
        ctypes.util.find_library = original


_ASYNCSSH_LIBRARIES = frozenset({"oqs", "liboqs", "nettle", "libnettle", "libnettle-6"})


def _find_library(name: str) -> str | None:
    import glob

    folders = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    for conf in sorted(glob.glob("/etc/ld.so.conf.d/*.conf")):
        try:
            with open(conf) as f:
                folders += [line.strip() for line in f if line.strip().startswith("/")]
        except OSError:
            continue
    folders += ["/usr/local/lib", "/usr/local/lib64", "/usr/lib", "/usr/lib64", "/lib", "/lib64"]
    for folder in folders:
        found = sorted(glob.glob(os.path.join(folder, f"lib{name.removeprefix('lib')}.so*")))
        if found:
            return found[0]
    return None
