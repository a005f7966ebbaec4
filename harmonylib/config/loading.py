"""Loading a profile: YAML plus overrides, checked against the dataclasses' types; hashing a config.

``load_config`` rejects unknown keys and wrong types before any work starts, naming the offending
key. A nested section in a profile overrides only what it names; the rest keeps that field's own
default. ``config_hash`` names caches and DONE markers: it hashes the config's values only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from harmonylib.config.profile import Config
from harmonylib.paths import package_path

PROFILES_DIR = package_path("profiles")


class ConfigError(ValueError):
    """A profile or override names an unknown key, or gives a value of the wrong type."""


def available_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (tuples/dataclasses built)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return _build(tp, value, key)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for alt in args:
            if alt is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, alt, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: {value!r} matches none of {_type_name(tp)}")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        kt, vt = args or (Any, Any)
        return {_coerce(k, kt, f"{key}.<key>"): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            return tuple(
                _coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        inner = args[0] if args else Any
        return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected a bool, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = prefix or cls.__name__
        raise ConfigError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(names)}")
    kwargs = {}
    for f in fields(cls):
        if f.name in data:
            value = data[f.name]
            default = _field_default(f)
            if is_dataclass(default) and isinstance(value, dict):
                # A nested section overrides only what it names: the rest keeps this field's own
                # default (e.g. the Harmony-VAE loop's epochs=10), not the nested class's defaults.
                value = _deep_merge(_shallow_asdict(default), value)
            kwargs[f.name] = _coerce(value, hints[f.name], f"{prefix}.{f.name}".lstrip("."))
    return cls(**kwargs)


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _shallow_asdict(obj: Any) -> dict[str, Any]:
    """Field values of a dataclass instance; nested dataclasses become dicts, the rest is kept as is."""
    return {
        f.name: _shallow_asdict(v) if is_dataclass(v) else v
        for f in fields(obj)
        for v in [getattr(obj, f.name)]
    }


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _dotted_to_nested(overrides: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        node = nested
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return nested


def load_config(profile: str | Path = "mini", overrides: dict[str, Any] | None = None) -> Config:
    """Load a profile by name (or a YAML path) and apply overrides.

    Args:
        profile: a shipped profile name (``smoke``, ``mini``, ``paper``) or a path to a YAML file.
        overrides: values that win over the profile; keys may be dotted (``"data.root"``).

    Returns:
        The resolved, type-checked :class:`Config`.

    Raises:
        ConfigError: unknown profile, unknown key or wrong type. Nothing has run yet.
    """
    path = Path(profile)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILES_DIR / f"{profile}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown profile {str(profile)!r}; available: {available_profiles()}")
    elif not path.is_file():
        raise ConfigError(f"{path}: profile file does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    raw.setdefault("profile", path.stem)
    if overrides:
        raw = _deep_merge(raw, _dotted_to_nested(overrides))
    return _build(Config, raw)


def with_seed(cfg: Config, seed: int, variant: str | None = None) -> Config:
    """``cfg`` with ``seed`` (and the Harmony-VAE ``variant``) replaced; the run hash follows both."""
    out = dataclasses.replace(cfg, seed=int(seed))
    if variant is not None:
        hv = dataclasses.replace(cfg.train.harmony_vae, variant=variant)
        out = dataclasses.replace(out, train=dataclasses.replace(out.train, harmony_vae=hv))
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-able dict of a (nested) config dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=list))


def config_hash(cfg: Any) -> str:
    """A short, stable hash of a config; used to name caches and DONE markers."""
    blob = json.dumps(to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.unet.direction=inverse", "seed=3"]`` -> overrides for :func:`load_config`.

    Values are parsed as YAML scalars (``3`` is an int, ``null`` None); command lines' ``--set``.
    """
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out
