"""The classifier as a linear probe on our own base VAE's encoder: frozen backbone, learning head."""

from __future__ import annotations

import pytest
import torch

from harmonylib.config import load_config
from harmonylib.models.probe import LinearProbeClassifier, VAEEncoderFeatures
from harmonylib.models.tiny import build_tiny_vae
from harmonylib.training.classifier_data import NormalizedInputClassifier
from harmonylib.training.objectives import classifier_loss, imagenet_normalize


@pytest.fixture
def vae_folder(tmp_path):
    folder = tmp_path / "vae"
    build_tiny_vae(0).save_pretrained(folder)
    return folder


def _toy(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Class 1: a red cast on the left half (a "composite"); class 0: the plain texture."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2 * n, 3, 32, 32, generator=g) * 1.2 - 0.6  # (2n, 3, 32, 32)
    x[:n, 0, :, :16] += 0.5
    labels = torch.cat([torch.ones(n), torch.zeros(n)]).long()
    return {"images": x.clamp(-1, 1), "labels": labels}


def test_features_are_pooled_moments_of_every_level(vae_folder):
    probe = LinearProbeClassifier.from_vae_folder(vae_folder, input_size=32)
    # tiny VAE: block widths 8, 16, 32, 32 and a mid block of 32 -> 2 * 120
    assert isinstance(probe.backbone, VAEEncoderFeatures) and probe.feature_dim == 240
    f = probe.extract_features(torch.zeros(2, 3, 64, 64))  # squashed to 32 px first
    assert f.shape == (2, 240) and torch.isfinite(f).all()
    assert not hasattr(probe.backbone, "decoder")  # only the encoder is kept


def test_frozen_backbone_gets_no_gradient_and_does_not_move(vae_folder):
    probe = LinearProbeClassifier.from_vae_folder(vae_folder, input_size=32).freeze_backbone()
    model = NormalizedInputClassifier(probe).train()
    assert not probe.backbone.training and probe.fc.training
    before = {k: v.clone() for k, v in probe.backbone.state_dict().items()}
    fc_before = probe.fc.weight.detach().clone()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss, _ = classifier_loss(model, _toy(4, 0), torch.Generator().manual_seed(0))
    loss.backward()
    opt.step()
    assert all(p.grad is None for p in probe.backbone.parameters())
    assert all(torch.equal(before[k], v) for k, v in probe.backbone.state_dict().items())
    assert not torch.equal(fc_before, probe.fc.weight)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.fc.weight", "classifier.fc.bias"}


def test_head_learns_a_separable_toy_problem(vae_folder):
    probe = LinearProbeClassifier.from_vae_folder(
        vae_folder, input_size=32, generator=torch.Generator().manual_seed(0)
    ).freeze_backbone()
    model = NormalizedInputClassifier(probe).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    train = _toy(128, 1)
    for step in range(60):
        loss, _ = classifier_loss(model, train, torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = _toy(32, 2)
    model.eval()
    with torch.no_grad():
        acc = (model(imagenet_normalize(test["images"])).argmax(1) == test["labels"]).float().mean()
        p = probe.predict_proba(test["images"])
    assert float(acc) >= 0.9, float(acc)
    assert float(p[:32].mean()) > float(p[32:].mean())  # class 1 = composite


def test_classifier_recipe_wires_the_probe(vae_folder, tmp_path, smoke_data_root):
    from harmonylib.training.recipes import build_classifier_model
    from harmonylib.training.runs import ensure_trained

    over = {
        "data.root": str(smoke_data_root),
        "train.classifier.backbone": "vae_encoder",
        "train.classifier.linear_probe": True,
        "train.classifier.backbone_weights": str(vae_folder),
    }
    cfg = load_config("smoke", over)
    clf = build_classifier_model(cfg)
    assert isinstance(clf, LinearProbeClassifier) and clf.backbone_frozen
    run = ensure_trained(cfg, "classifier", run_dir=tmp_path / "clf", progress=False)
    assert run.status == "completed" and set(run.test_metrics) >= {"accuracy", "roc_auc"}
    loaded = run.load_model().eval()
    assert isinstance(loaded, LinearProbeClassifier)
    # the probe's backbone is the VAE's encoder, unchanged by training
    from diffusers import AutoencoderKL

    enc = AutoencoderKL.from_pretrained(vae_folder).encoder.state_dict()
    assert all(torch.equal(enc[k], v) for k, v in loaded.backbone.encoder.state_dict().items())
    with torch.no_grad():
        assert loaded.predict_proba(torch.zeros(2, 3, 64, 64)).shape == (2,)
    # end to end (not a probe) stays an option; a probe without weights is refused
    assert not build_classifier_model(
        load_config("smoke", {**over, "train.classifier.linear_probe": False})
    ).backbone_frozen
    with pytest.raises(ValueError, match="backbone_weights"):
        build_classifier_model(load_config("smoke", {**over, "train.classifier.backbone_weights": None}))
