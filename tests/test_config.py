"""Profiles are data: each loads, overrides are type-checked, unknown keys fail loudly."""

import pytest

from harmonylib.config import ConfigError, available_profiles, config_hash, load_config


def test_shipped_profiles_load():
    assert available_profiles() == ["mini", "paper", "smoke"]
    for name in available_profiles():
        cfg = load_config(name)
        assert cfg.profile == name


def test_profiles_differ_where_documented():
    smoke, mini, paper = (load_config(p) for p in ("smoke", "mini", "paper"))
    assert smoke.data.kind == mini.data.kind == "builtin"
    assert paper.data.kind == "iharmony4"
    assert smoke.data.builtin.n_train < mini.data.builtin.n_train
    # the evaluation protocol is the authors' in every profile
    assert smoke.eval == mini.eval == paper.eval


def test_unknown_profile_fails_loudly():
    with pytest.raises(ConfigError, match="unknown profile 'minii'.*mini"):
        load_config("minii")


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['bogus'\] in data"):
        load_config("mini", {"data.bogus": 1})


@pytest.mark.parametrize(
    "key,value,msg",
    [
        ("data.builtin.n_train", "100", "data.builtin.n_train: expected an int"),
        ("data.builtin.n_train", True, "expected an int"),
        ("eval.background", "blue", "eval.background: 'blue' is not one of"),
        ("seed", 1.5, "seed: expected an int"),
    ],
)
def test_wrong_type_names_the_key(key, value, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config("mini", {key: value})


def test_overrides_apply_and_change_the_hash():
    base = load_config("mini")
    other = load_config("mini", {"data.root": "/tmp/elsewhere"})
    assert other.data.root == "/tmp/elsewhere"
    assert config_hash(base) != config_hash(other)
    assert config_hash(base) == config_hash(load_config("mini"))


def test_yaml_path_profile(tmp_path):
    p = tmp_path / "custom.yaml"
    p.write_text("data:\n  kind: builtin\n  root: x\n")
    cfg = load_config(p)
    assert cfg.profile == "custom" and cfg.data.root == "x"
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)


def test_parse_overrides_reads_yaml_scalars():
    from harmonylib.config import parse_overrides

    assert parse_overrides(["seed=3", "data.root=/x", "train.unet.init=null"]) == {
        "seed": 3,
        "data.root": "/x",
        "train.unet.init": None,
    }
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["seed"])
