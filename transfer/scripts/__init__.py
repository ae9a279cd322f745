"""The POSIX shell scripts that run on a host, kept as ``.sh`` files beside this module.

They ship as package data so ``shellcheck`` can read them as what they are. A script never has a
person's text pasted into it: values reach it as arguments or environment variables.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load(name: str) -> str:
    """The text of the script ``name`` (e.g. ``"wrapper.sh"``), read once per process."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
