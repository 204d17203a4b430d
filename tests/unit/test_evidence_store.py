"""The evidence store on disk: content-addressed files, marked with when they were last put,
deleted only when not put since a cutoff."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from restitution.adapters import storage
from restitution.adapters.storage import LocalEvidenceStore

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DATA = b"\x89PNG\r\n\x1a\n some photo"


def file_of(store: LocalEvidenceStore, key: str) -> Path:
    [path] = [path for path in store.root.rglob("*") if path.is_file()]
    assert path.name == key
    return path


def written_at(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def test_the_same_bytes_are_stored_once_under_their_sha256(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path)

    first = store.put(DATA, T0)
    again = store.put(DATA, T0 + timedelta(hours=1))

    digest = hashlib.sha256(DATA).hexdigest()
    assert first == again == (digest, digest)
    assert store.get(digest) == DATA
    file_of(store, digest)


def test_put_marks_the_file_written_at_its_time_and_again_when_put_again(
    tmp_path: Path,
) -> None:
    store = LocalEvidenceStore(tmp_path)
    key, _ = store.put(DATA, T0)
    assert written_at(file_of(store, key)) == T0

    store.put(DATA, T0 + timedelta(days=2))

    assert written_at(file_of(store, key)) == T0 + timedelta(days=2)


def test_delete_removes_a_file_put_before_the_cutoff(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path)
    key, _ = store.put(DATA, T0)

    assert store.delete(key, written_before=T0 + timedelta(seconds=1))

    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []
    with pytest.raises(FileNotFoundError):
        store.get(key)


def test_delete_keeps_a_file_put_again_since_the_cutoff(tmp_path: Path) -> None:
    # An upload of the same bytes under way: its row is not written yet.
    store = LocalEvidenceStore(tmp_path)
    key, _ = store.put(DATA, T0)
    store.put(DATA, T0 + timedelta(days=2))

    assert not store.delete(key, written_before=T0 + timedelta(days=1))

    assert store.get(key) == DATA
    assert written_at(file_of(store, key)) == T0 + timedelta(days=2)


def test_delete_of_a_missing_file_is_no_error(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path)

    assert not store.delete("ab" * 32, written_before=T0)


def test_a_put_while_delete_has_moved_the_file_aside_stores_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalEvidenceStore(tmp_path)
    key, _ = store.put(DATA, T0)
    rename = os.rename

    def rename_then_put(source: Any, target: Any) -> None:
        rename(source, target)
        monkeypatch.setattr(storage.os, "rename", rename)
        store.put(DATA, T0 + timedelta(days=2))  # finds no file: writes it anew

    monkeypatch.setattr(storage.os, "rename", rename_then_put)

    assert store.delete(key, written_before=T0 + timedelta(days=1))

    assert store.get(key) == DATA
    assert written_at(file_of(store, key)) == T0 + timedelta(days=2)
