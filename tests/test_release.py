"""Released mini checkpoints: Harmony-VAE deltas on the base VAE, and installing them as finished runs."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import AutoencoderKL

from harmonylib.config import load_config
from harmonylib.models.harmony_vae import HarmonyVAE
from harmonylib.models.tiny import build_tiny_vae
from harmonylib.release import (
    BASE_PREFIXES,
    DELTA_PREFIXES,
    RELEASE_FILE,
    SHARD_INDEX,
    ReleaseError,
    install_released,
    load_harmony_vae_delta,
    release_name,
    save_harmony_vae_delta,
)
from harmonylib.training.runs import read_done, run_hash


def _trained_like(base: AutoencoderKL, seed: int = 3) -> HarmonyVAE:
    """A Harmony-VAE whose delta parameters moved away from the base (as after E_c+D training)."""
    m = HarmonyVAE.from_vae(base)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, p in m.named_parameters():
            if k.startswith(DELTA_PREFIXES):
                p.add_(torch.randn(p.shape, generator=g) * 0.01)
    return m.eval()


@pytest.fixture()
def base_dir(tmp_path):
    d = tmp_path / "weights" / "vae"
    build_tiny_vae(0).save_pretrained(d)
    return d


def test_delta_round_trip_stores_only_what_training_changes(tmp_path, base_dir):
    base = AutoencoderKL.from_pretrained(base_dir)
    model = _trained_like(base)
    out = save_harmony_vae_delta(
        model, tmp_path / "rel", base_dir, {"run_hash": "x", "steps": 1, "final_loss": 0.1}
    )
    index = json.loads((out / SHARD_INDEX).read_text())["weight_map"]
    assert index and all(k.startswith(DELTA_PREFIXES) for k in index)
    assert not any(k.startswith(BASE_PREFIXES) for k in index)
    back = load_harmony_vae_delta(out, base_dir)
    sd, sd_back = model.state_dict(), back.state_dict()
    for k in sd:
        want = sd[k].half().float() if k.startswith(DELTA_PREFIXES) else sd[k]  # stored fp16
        torch.testing.assert_close(sd_back[k], want, rtol=0, atol=0)
    # the same model saves to the same bytes (make retrain compares hashes)
    again = save_harmony_vae_delta(
        model, tmp_path / "again" / "rel", base_dir, {"run_hash": "x", "steps": 1, "final_loss": 0.1}
    )
    for f in sorted(out.iterdir()):
        assert f.read_bytes() == (again / f.name).read_bytes(), f.name


def test_delta_config_names_its_own_folder_not_the_clone(tmp_path, base_dir):
    # from_pretrained writes the absolute folder it read into _name_or_path; a release made in
    # another clone must still write the same config.json (make retrain compares bytes)
    model = _trained_like(AutoencoderKL.from_pretrained(base_dir))
    model.register_to_config(_name_or_path=str(tmp_path / "some" / "clone" / "runs" / "ema"))
    a = save_harmony_vae_delta(model, tmp_path / "a" / "rel", base_dir, {"run_hash": "x"})
    model.register_to_config(_name_or_path=str(tmp_path / "elsewhere" / "ema"))
    b = save_harmony_vae_delta(model, tmp_path / "b" / "rel", base_dir, {"run_hash": "x"})
    assert json.loads((a / "config.json").read_text())["_name_or_path"] == "rel"
    assert (a / "config.json").read_bytes() == (b / "config.json").read_bytes()


def test_committed_weight_configs_hold_no_absolute_path():
    from harmonylib.paths import package_path

    found = []
    for f in sorted(package_path("weights").rglob("*.json")):
        text = f.read_text()
        found += [f"{f}: {line.strip()}" for line in text.splitlines() if '"/' in line]
    assert not found, "absolute paths in committed weight files:\n" + "\n".join(found)


def test_delta_refuses_another_base_vae(tmp_path, base_dir):
    out = save_harmony_vae_delta(
        _trained_like(AutoencoderKL.from_pretrained(base_dir)), tmp_path / "rel", base_dir, {"run_hash": "x"}
    )
    other = tmp_path / "other_vae"
    build_tiny_vae(1).save_pretrained(other)
    with pytest.raises(ReleaseError, match="another base VAE"):
        load_harmony_vae_delta(out, other)
    (out / SHARD_INDEX).unlink()
    with pytest.raises(ReleaseError, match="missing"):
        load_harmony_vae_delta(out, base_dir)


def test_install_released_is_a_finished_run_that_ensure_trained_reuses(tmp_path, base_dir):
    from harmonylib.training.runs import ensure_trained

    cfg = load_config(
        "smoke",
        {
            "train.harmony_vae.vae": str(base_dir),
            "pretrain.out_dir": str(tmp_path / "weights"),
            "data.root": str(tmp_path / "data"),
        },
    )
    model = _trained_like(AutoencoderKL.from_pretrained(base_dir))
    h = run_hash(cfg, "harmony_vae")
    rel = tmp_path / "weights" / "released" / release_name(cfg)
    save_harmony_vae_delta(model, rel, base_dir, {"run_hash": h, "steps": 7, "final_loss": 0.25})
    run_dir = tmp_path / "runs" / "harmony_vae"
    assert install_released(cfg, run_dir)
    done = read_done(run_dir)
    assert done["source"] == "released" and done["config_hash"] == h and done["steps"] == 7
    run = ensure_trained(cfg, "harmony_vae", run_dir=run_dir, progress=False)  # reused: no training
    assert run.steps == 7 and not (run_dir / "checkpoints").exists()
    torch.testing.assert_close(
        run.load_model().state_dict()["decoder.conv_out.weight"],
        model.state_dict()["decoder.conv_out.weight"].half().float(),
    )
    # another seed has no release: nothing installed
    other = load_config(
        "smoke",
        {"train.harmony_vae.vae": str(base_dir), "pretrain.out_dir": str(tmp_path / "weights"), "seed": 5},
    )
    assert not install_released(other, tmp_path / "runs" / "other")
    # a release whose run hash differs (another recipe) is not used
    json_path = rel / RELEASE_FILE
    rec = json.loads(json_path.read_text())
    json_path.write_text(json.dumps({**rec, "run_hash": "0" * 16}))
    assert not install_released(cfg, tmp_path / "runs" / "again")
