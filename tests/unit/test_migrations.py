"""Migrations: the fast path's idea of head is Alembic's, and SQLite upgrades from scratch to head."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from vidgate.gateway.storage.migrate import HEAD, alembic_config, current_revision, migrate


def test_head_constant_matches_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert ScriptDirectory.from_config(alembic_config(url)).get_current_head() == HEAD
    assert current_revision(url) is None
    migrate(url)
    assert current_revision(url) == HEAD
    migrate(url)  # the fast path: nothing to do
