from __future__ import annotations

from pathlib import Path

import pytest

from tests.kubeapi.store import Store, TooOldResourceVersion, WatchEvent, load_file, save_atomically

KEY = ("", "configmaps")


def cm(name: str, namespace: str = "default") -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": namespace}}


def test_versions_events_and_history() -> None:
    store = Store(history=2)
    seen: list[WatchEvent] = []
    store.subscribe(seen.append)
    a = store.put(KEY, cm("a"))
    b = store.put(KEY, cm("a"))
    gone = store.remove(KEY, "default", "a")
    assert [
        a["metadata"]["resourceVersion"],
        b["metadata"]["resourceVersion"],
        gone["metadata"]["resourceVersion"],
    ] == ["1", "2", "3"]
    assert [e.type for e in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert [e.rv for e in store.events_after(1)] == [2, 3]
    with pytest.raises(TooOldResourceVersion, match=r"too old resource version: 0 \(1\)"):
        store.events_after(0)
    store.compact()
    assert store.events_after(3) == []


def test_reads_are_copies_and_sorted() -> None:
    store = Store()
    store.put(KEY, cm("b"))
    store.put(KEY, cm("a", "other"))
    store.put(KEY, cm("a"))
    assert [o["metadata"]["name"] for o in store.list_objects(KEY, "default")] == ["a", "b"]
    assert len(store.list_objects(KEY, None)) == 3
    got = store.get(KEY, "default", "a")
    assert got is not None
    got["metadata"]["name"] = "changed"
    assert store.get(KEY, "default", "a") is not None


def test_persistence_round_trip(tmp_path: Path) -> None:
    store = Store()
    store.put(KEY, cm("a"))
    path = tmp_path / "state.json"
    save_atomically(store, path)
    restored = Store()
    assert load_file(restored, path)
    assert restored.rv == 1
    assert restored.get(KEY, "default", "a") is not None
    with pytest.raises(TooOldResourceVersion):
        restored.events_after(0)
    assert not load_file(Store(), tmp_path / "missing.json")
