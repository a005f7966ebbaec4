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


# ---- mask pooling (train.classifier.pooling: mask) ----------------------------------------------


def _scene(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A stationary texture (2, 3, 32, 32) in [-1, 1] and a foreground square mask (2, 1, 32, 32)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 32, 32, generator=g) * 1.0 - 0.5
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:24, 6:22] = 1.0
    return x, mask


def test_mask_pooled_features_have_the_global_shape_and_need_the_mask(vae_folder):
    probe = LinearProbeClassifier.from_vae_folder(vae_folder, pooling="mask", input_size=32)
    assert probe.requires_mask and probe.feature_dim == 240
    x, mask = _scene(0)
    f = probe.extract_features(x, mask)
    assert f.shape == (2, 240) and torch.isfinite(f).all()
    # a mask given at another size is area-resized to each level's grid
    m64 = torch.nn.functional.interpolate(mask, size=(64, 64), mode="nearest")
    torch.testing.assert_close(probe.extract_features(x, m64), f, atol=1e-5, rtol=1e-4)
    # an empty foreground has nothing to compare: all differences are zero
    assert torch.equal(probe.extract_features(x, torch.zeros_like(mask)), torch.zeros(2, 240))
    model = NormalizedInputClassifier(probe)
    for call in (
        lambda: probe.extract_features(x),
        lambda: probe.predict_proba(x),
        lambda: model(imagenet_normalize(x)),
    ):
        with pytest.raises(ValueError, match="pooling: mask"):
            call()
    with pytest.raises(ValueError, match="mask must be"):
        probe.extract_features(x, mask[:1])
    with torch.no_grad():
        assert probe.eval().predict_proba(x, mask).shape == (2,)
    with pytest.raises(ValueError, match="pooling"):
        LinearProbeClassifier.from_vae_folder(vae_folder, pooling="fg", input_size=32)


def test_foreground_recolour_moves_mask_features_a_global_recolour_does_not():
    """On the committed mini base VAE's encoder (the backbone mini probes): a randomly initialised
    encoder's features react to a global shift as much as to a local one (zero padding at the
    border, untrained filters), so this property is one of the trained backbone."""
    from harmonylib.paths import package_path

    weights = package_path("weights", "mini", "vae")
    probe = LinearProbeClassifier.from_vae_folder(weights, pooling="mask", input_size=64)
    glob = LinearProbeClassifier.from_vae_folder(weights, pooling="global", input_size=64)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 64, 64, generator=g) - 0.5  # a stationary texture in [-0.5, 0.5]
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 16:48, 12:44] = 1.0
    cast = torch.tensor([0.3, 0.0, -0.2]).view(1, 3, 1, 1)
    fg_recoloured = x + cast * mask  # a composite: only the foreground's colour changes
    all_recoloured = x + cast  # the whole image: still harmonious

    def moved(p, y):
        with torch.no_grad():
            return float((p.extract_features(y, mask) - p.extract_features(x, mask)).norm())

    fg_move, all_move = moved(probe, fg_recoloured), moved(probe, all_recoloured)
    assert all_move < 0.2 * fg_move, (all_move, fg_move)  # measured: 29 against 693
    # global pooling does the opposite: the whole-image recolour moves it more
    assert moved(glob, all_recoloured) > moved(glob, fg_recoloured)


def test_classifier_loss_needs_the_batch_masks_of_a_mask_pooled_probe(vae_folder):
    probe = LinearProbeClassifier.from_vae_folder(vae_folder, pooling="mask", input_size=32)
    x, mask = _scene(2)
    batch = {"images": x, "labels": torch.tensor([1, 0])}
    with pytest.raises(ValueError, match="masks"):  # a batch without masks (not from pair_collate)
        classifier_loss(NormalizedInputClassifier(probe), batch)
    loss, _ = classifier_loss(NormalizedInputClassifier(probe), {**batch, "masks": mask})
    assert torch.isfinite(loss)


def test_classifier_recipe_wires_mask_pooling(vae_folder, tmp_path, smoke_data_root):
    from harmonylib.training.classifier_eval import evaluate_classifier_run
    from harmonylib.training.recipes import build_classifier_model
    from harmonylib.training.runs import ensure_trained

    over = {
        "data.root": str(smoke_data_root),
        "train.classifier.backbone": "vae_encoder",
        "train.classifier.backbone_weights": str(vae_folder),
        "train.classifier.pooling": "mask",
        "train.classifier.augment_hflip": True,  # masks follow the flips
        "train.classifier.augment_crop_scale": 0.6,  # and the crops
    }
    cfg = load_config("smoke", over)
    assert build_classifier_model(cfg).requires_mask
    run = ensure_trained(cfg, "classifier", run_dir=tmp_path / "clf", progress=False)
    assert run.status == "completed" and set(run.test_metrics) >= {"accuracy", "roc_auc"}
    loaded = run.load_model().eval()
    assert isinstance(loaded, LinearProbeClassifier) and loaded.requires_mask  # kept on reload
    m = evaluate_classifier_run(cfg, tmp_path / "clf", "test")
    assert m["split"] == "test" and m["roc_auc"] == pytest.approx(run.test_metrics["roc_auc"])
    with pytest.raises(ValueError, match="config hash"):
        evaluate_classifier_run(
            load_config("smoke", {**over, "train.classifier.pooling": "global"}), tmp_path / "clf"
        )
    with pytest.raises(ValueError, match="needs backbone: vae_encoder"):
        build_classifier_model(load_config("smoke", {**over, "train.classifier.backbone": "resnet"}))
