"""Which paths a sync leaves alone: ``.gitignore`` and ``.gputuiignore`` files of the source tree
(each applies to its own folder and below, deeper files winning, as git reads them) and
``--exclude`` patterns, which have the last word. All use gitignore syntax (``pathspec``).

Excluded paths are neither sent nor compared nor deleted on the destination, as with rsync's
``--filter=':- .gitignore'``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

IGNORE_FILES = (".gitignore", ".gputuiignore")


def _compile(lines: Iterable[str]) -> Any | None:
    lines = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return None
    import pathspec  # imported only when there is a pattern: a sync without any starts faster

    return pathspec.GitIgnoreSpec.from_lines(lines)


@dataclass
class ExcludeRules:
    """Patterns by the folder they apply to (``""`` is the root)."""

    cli: Any | None = None
    by_folder: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def from_patterns(cls, patterns: Iterable[str]) -> ExcludeRules:
        return cls(cli=_compile(patterns))

    @property
    def empty(self) -> bool:
        return self.cli is None and not self.by_folder

    def add_file(self, folder: str, text: str) -> None:
        """Rules from an ignore file found in ``folder`` (in IGNORE_FILES order: later wins)."""
        spec = _compile(text.splitlines())
        if spec is not None:
            self.by_folder.setdefault(folder, []).append(spec)

    def excluded(self, rel: str, is_dir: bool) -> bool:
        """True when ``rel`` is left out. The caller prunes excluded folders, so a file inside
        one is never asked about (git cannot re-include it either)."""
        if self.empty:
            return False
        verdict: bool | None = None
        if self.by_folder:
            parts = rel.split("/")
            for depth in range(len(parts)):
                folder = "/".join(parts[:depth])
                specs = self.by_folder.get(folder)
                if not specs:
                    continue
                inner = "/".join(parts[depth:]) + ("/" if is_dir else "")
                for spec in specs:
                    result = spec.check_file(inner).include
                    if result is not None:
                        verdict = result
        if self.cli is not None:
            result = self.cli.check_file(rel + ("/" if is_dir else "")).include
            if result is not None:
                verdict = result
        return bool(verdict)
