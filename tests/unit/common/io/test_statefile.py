"""Atomic state files in a tmp_path: write/replace/read/remove/list and error mapping."""

from __future__ import annotations

import os
import stat

import pytest

from common.io import statefile


def test_write_read_replace_remove(tmp_path):
    folder = tmp_path / "state" / "nested"
    assert statefile.read(folder, "a.json") is None
    target = statefile.write_atomic(folder, "a.json", b"one")
    assert target == folder / "a.json"
    assert statefile.read(folder, "a.json") == b"one"
    statefile.write_atomic(folder, "a.json", b"two")
    assert statefile.read(folder, "a.json") == b"two"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert statefile.remove(folder, "a.json") is True
    assert statefile.remove(folder, "a.json") is False
    assert statefile.read(folder, "a.json") is None


def test_large_content_is_written_whole(tmp_path):
    data = os.urandom(3 * 1024 * 1024)
    statefile.write_atomic(tmp_path, "big", data)
    assert statefile.read(tmp_path, "big") == data


def test_list_names_skips_temporaries_and_filters_suffix(tmp_path):
    assert statefile.list_names(tmp_path / "missing") == []
    statefile.write_atomic(tmp_path, "b.json", b"{}")
    statefile.write_atomic(tmp_path, "a.json", b"{}")
    statefile.write_atomic(tmp_path, "notes.txt", b"")
    (tmp_path / ".tmp-c.json-dead").write_bytes(b"torn")
    assert statefile.list_names(tmp_path, ".json") == ["a.json", "b.json"]
    assert statefile.list_names(tmp_path) == ["a.json", "b.json", "notes.txt"]


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "a\x00", ".tmp-x"])
def test_unsafe_names_are_refused(tmp_path, name):
    with pytest.raises(statefile.StateFileError, match="invalid state file name"):
        statefile.write_atomic(tmp_path, name, b"x")
    with pytest.raises(statefile.StateFileError, match="invalid state file name"):
        statefile.read(tmp_path, name)


def test_os_errors_are_mapped_and_leave_no_temporary(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(statefile.StateFileError, match="cannot write state file"):
        statefile.write_atomic(blocker, "a.json", b"x")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(statefile.StateFileError, match="cannot write state file"):
        statefile.write_atomic(tmp_path, "dir.json", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.json", "file"]
    with pytest.raises(statefile.StateFileError, match="cannot read state file"):
        statefile.read(tmp_path, "dir.json")
    with pytest.raises(statefile.StateFileError, match="cannot list state directory"):
        statefile.list_names(blocker)
