"""harmonylib.cache: key -> folder, key and done markers, a foreign key refused."""

from __future__ import annotations

import json

import pytest

from harmonylib.cache import CacheFolder, ForeignKeyError, Marker, key_stamp


def test_key_stamp_is_canonical():
    assert key_stamp({"b": 1, "a": 2}) == key_stamp({"a": 2, "b": 1}) == '{"a": 2, "b": 1}'
    assert key_stamp("abc") == "abc"


def test_open_resume_done_and_foreign_key(tmp_path):
    c = CacheFolder(tmp_path / "f", {"size": 64}, key_marker=Marker("KEY"))
    assert not c.is_done()
    c.open()
    assert (tmp_path / "f" / "KEY").read_text() == '{"size": 64}\n'
    c.open()  # resuming with the same key is fine
    c.mark_done()
    assert c.is_done()
    other = CacheFolder(tmp_path / "f", {"size": 128}, key_marker=Marker("KEY"))
    assert not other.is_done()
    with pytest.raises(ForeignKeyError, match="size"):
        other.open()


def test_done_marker_alone_refuses_a_foreign_key(tmp_path):
    CacheFolder(tmp_path, "h1").mark_done()
    with pytest.raises(ForeignKeyError):
        CacheFolder(tmp_path, "h2").open()


def test_json_marker_with_a_record(tmp_path):
    m = Marker("INFO.json", "hash")
    c = CacheFolder(tmp_path, "h1", key_marker=m, done=Marker("BUILT.json", "key"))
    c.open(record={"settings": {"size": 8}, "hash": "h1", "n": 3})
    assert json.loads((tmp_path / "INFO.json").read_text()) == {"settings": {"size": 8}, "hash": "h1", "n": 3}
    c.mark_done({"n_kept": 2})
    assert json.loads((tmp_path / "BUILT.json").read_text()) == {"key": "h1", "n_kept": 2}
    assert c.is_done()
    assert not CacheFolder(tmp_path, "h2", done=Marker("BUILT.json", "key")).is_done()
