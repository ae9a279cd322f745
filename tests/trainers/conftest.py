"""Fixtures of the trainer tests: a shared token cache and a tiny config per test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from trainer_helpers import tiny_config_for


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tokenizer and token rows are built once for the whole session."""
    return tmp_path_factory.mktemp("trainer-cache")


@pytest.fixture
def tiny_config(tmp_path: Path, shared_cache: Path) -> Callable[..., dict[str, Any]]:
    """Build a tiny config mapping; keyword sections are merged into the defaults."""

    def build(name: str = "run", **changes: Any) -> dict[str, Any]:
        return tiny_config_for(tmp_path / name, shared_cache, **changes)

    return build
