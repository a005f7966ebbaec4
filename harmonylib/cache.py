"""One way to cache a folder of outputs: key -> folder, atomic markers, DONE, a foreign key refused.

A :class:`CacheFolder` is a folder made from a *key* (a settings hash, or a mapping of what made
it: model hashes, sizes, seeds). Two marker files say what it holds:

- the *key marker* (optional), written before the first output: which key the folder is being
  filled with, so an interrupted folder is resumed with the same key and never mixed with another;
- the *done marker*, written last, atomically: the folder is complete for that key.

A marker holds the key's stamp as text, or a JSON record whose ``field`` holds the key (the
record may carry more: settings, provenance). A folder whose markers name another key is refused
(:class:`ForeignKeyError`) instead of being mixed. Outputs themselves are written atomically by
their writers (:mod:`harmonylib.io`), so a folder is resumed file by file.

Used by predictions (:func:`harmonylib.inference.predict_split`), autoencoder ceilings
(:mod:`harmonylib.ceiling`), pixel-baseline predictions, Human Harmony builds and training run
folders (:func:`harmonylib.training.runs.run_folder`: the run hash in ``run.json`` and ``DONE``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harmonylib.io import atomic_write_json, atomic_write_text


class ForeignKeyError(FileExistsError):
    """The folder holds outputs made from another key."""


def key_stamp(key: Any) -> str:
    """The canonical text of a key: a string as it is, anything else as sorted-key JSON."""
    return key if isinstance(key, str) else json.dumps(key, sort_keys=True, default=str)


@dataclass(frozen=True)
class Marker:
    """A marker file: its ``name``, and the JSON ``field`` holding the key (None: the file is the stamp)."""

    name: str
    field: str | None = None

    def read(self, folder: Path) -> str | None:
        """The stamp of the key this marker names, or None when it is absent."""
        path = folder / self.name
        if not path.is_file():
            return None
        text = path.read_text()
        if self.field is None:
            return text.strip()
        return key_stamp(json.loads(text).get(self.field))

    def write(self, folder: Path, key: Any, record: Mapping[str, Any] | None = None) -> Path:
        """Write the marker atomically: the stamp as text, or ``record`` with ``field`` set to the key."""
        path = folder / self.name
        if self.field is None:
            atomic_write_text(path, key_stamp(key) + "\n")
        else:
            atomic_write_json(path, {**dict(record or {}), self.field: key})
        return path


@dataclass(frozen=True)
class CacheFolder:
    """A folder keyed by what made it.

    Args:
        path: the folder.
        key: a string (e.g. a settings hash) or a JSON-able mapping.
        done: the marker written when the folder is complete.
        key_marker: the marker written before the first output (None: only ``done``).
        what: what the folder holds, for messages ("predictions", "a ceiling").
    """

    path: Path
    key: Any
    done: Marker = Marker("DONE")
    key_marker: Marker | None = None
    what: str = "outputs"

    @property
    def stamp(self) -> str:
        return key_stamp(self.key)

    def is_done(self) -> bool:
        """Whether the folder is complete for this key."""
        return self.done.read(Path(self.path)) == self.stamp

    def foreign(self) -> str | None:
        """The stamp of another key that a marker names (key marker first), or None."""
        for marker in (self.key_marker, self.done):
            found = None if marker is None else marker.read(Path(self.path))
            if found is not None and found != self.stamp:
                return found
        return None

    def open(self, record: Mapping[str, Any] | None = None) -> Path:
        """Create the folder (or resume it): refuse a foreign key, write the key marker if absent.

        Raises:
            ForeignKeyError: a marker names another key.
        """
        path = Path(self.path)
        path.mkdir(parents=True, exist_ok=True)
        found = self.foreign()
        if found is not None:
            raise ForeignKeyError(
                f"{path} holds {self.what} made with {found}, not {self.stamp}; use another folder or delete it"
            )
        if self.key_marker is not None and self.key_marker.read(path) is None:
            self.key_marker.write(path, self.key, record)
        return path

    def mark_done(self, record: Mapping[str, Any] | None = None) -> Path:
        """Write the done marker (last, atomically)."""
        return self.done.write(Path(self.path), self.key, record)


def cache_folder(path: str | os.PathLike, key: Any, **kwargs: Any) -> CacheFolder:
    return CacheFolder(Path(path), key, **kwargs)
