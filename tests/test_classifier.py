"""Harmony classifier (paper §4.2, §5.2; official-implementation.md §5): torchvision key layout,
sizes, the authors' checkpoint format, preprocessing, linear-probe freezing and init determinism."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from harmonylib.models.classifier import (
    CLASSIFIER_ARCHS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    CheckpointMismatchError,
    HarmonyClassifier,
    ResNet,
    build_classifier,
    resnet50,
)
from harmonylib.reproducibility import make_generator


def torchvision_resnet50_layout(num_classes: int = 2) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of torchvision ``resnet50()`` with ``fc = Linear(2048, num_classes)``, in
    state-dict order, written from the architecture description alone (not from our model):
    stem 7×7/64 + BN; stages of 3, 4, 6, 3 bottlenecks with planes 64, 128, 256, 512; a bottleneck
    is conv1 1×1 → conv2 3×3 → conv3 1×1 (×4), each with a BN; the first block of each stage has
    downsample.0 (1×1 conv) and downsample.1 (BN), registered after bn3."""
    layout: list[tuple[str, tuple[int, ...]]] = []

    def conv(name: str, out_ch: int, in_ch: int, k: int) -> None:
        layout.append((f"{name}.weight", (out_ch, in_ch, k, k)))

    def bn(name: str, ch: int) -> None:
        layout.extend((f"{name}.{t}", (ch,)) for t in ("weight", "bias", "running_mean", "running_var"))
        layout.append((f"{name}.num_batches_tracked", ()))

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    in_ch = 64
    for stage, (blocks, planes) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True), start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            conv(f"{p}.conv1", planes, in_ch, 1)
            bn(f"{p}.bn1", planes)
            conv(f"{p}.conv2", planes, planes, 3)
            bn(f"{p}.bn2", planes)
            conv(f"{p}.conv3", planes * 4, planes, 1)
            bn(f"{p}.bn3", planes * 4)
            if b == 0:
                conv(f"{p}.downsample.0", planes * 4, in_ch, 1)
                bn(f"{p}.downsample.1", planes * 4)
            in_ch = planes * 4
    layout += [("fc.weight", (num_classes, 2048)), ("fc.bias", (num_classes,))]
    return layout


def _params_in(layout: list[tuple[str, tuple[int, ...]]]) -> int:
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(math.prod(shape) for key, shape in layout if not key.endswith(buffers))


def _images(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=make_generator(seed)) * 2 - 1  # (B, 3, H, W) in [-1, 1]


def _mini(seed: int = 0, **kw) -> HarmonyClassifier:
    return build_classifier("mini", generator=make_generator(seed), **kw).eval()


# ---- architecture ------------------------------------------------------------------------------


def test_resnet50_state_dict_is_torchvision_layout():
    with torch.device("meta"):
        model = build_classifier("resnet50")
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    expected = torchvision_resnet50_layout(2)
    assert len(expected) == 320
    assert got == expected  # key for key, shape for shape, in order
    assert not any(k in ("mean", "std") for k, _ in got)  # normalisation buffers are not persisted


@pytest.mark.parametrize(("num_classes", "params"), [(2, 23_512_130), (1000, 25_557_032)])
def test_resnet50_parameter_counts(num_classes, params):
    assert _params_in(torchvision_resnet50_layout(num_classes)) == params
    with torch.device("meta"):
        model = resnet50(num_classes=num_classes)
    assert sum(p.numel() for p in model.parameters()) == params
    assert isinstance(model, ResNet) and model.feature_dim == 2048


def test_mini_size_and_head():
    with torch.device("meta"):
        model = build_classifier("mini")
    assert sum(p.numel() for p in model.parameters()) == 309_714
    assert model.input_size == 64 and model.feature_dim == 128
    assert tuple(model.fc.weight.shape) == (2, 128)
    assert {k.split(".", 1)[0] for k in model.state_dict()} == {
        "conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"
    }  # fmt: skip


def test_v15_stride_on_3x3_and_downsample():
    with torch.device("meta"):
        model = resnet50()
    for stage in (2, 3, 4):
        first = getattr(model, f"layer{stage}")[0]
        assert first.conv1.stride == (1, 1) and first.conv2.stride == (2, 2)
        assert first.downsample[0].stride == (2, 2)
    assert model.layer1[0].conv2.stride == (1, 1) and model.layer1[0].downsample is not None
    assert model.conv1.stride == (2, 2) and model.conv1.padding == (3, 3) and model.conv1.bias is None
    assert model.maxpool.kernel_size == 3 and model.maxpool.stride == 2 and model.maxpool.padding == 1


def test_unknown_arch_lists_options():
    with pytest.raises(ValueError, match=r"'vit'.*\['resnet50', 'mini'\]"):
        build_classifier("vit")
    assert CLASSIFIER_ARCHS == ("resnet50", "mini")


# ---- init ----------------------------------------------------------------------------------------


def test_init_is_torchvision_kaiming():
    model = _mini(0)
    w = model.layer4[0].conv2.weight  # (128, 128, 3, 3): kaiming normal, fan_out = 128·9
    assert w.std().item() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.02)
    assert abs(w.mean().item()) < 1e-3
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)
    assert torch.all(model.layer1[0].bn2.weight == 1)  # zero_init_residual is off by default
    assert torch.all(_mini(0, zero_init_residual=True).layer1[0].bn2.weight == 0)
    bound = 1 / math.sqrt(128)  # fc keeps PyTorch's Linear default range
    assert model.fc.weight.abs().max() <= bound and model.fc.bias.abs().max() <= bound


def test_init_deterministic_under_seed_and_generator():
    def weights(m):
        return torch.cat([p.flatten() for p in m.parameters()])

    torch.manual_seed(0)
    a = build_classifier("mini")
    torch.manual_seed(0)
    b = build_classifier("mini")
    assert torch.equal(weights(a), weights(b))

    c = _mini(7)
    torch.rand(1000)  # moving the global RNG must not matter when a generator is given
    d = _mini(7)
    assert torch.equal(weights(c), weights(d))
    assert not torch.equal(weights(c), weights(_mini(8)))

    with torch.no_grad():
        features = c.extract_features(_images(1, 64, 64))[0, :9]
    expected = torch.tensor([1.5269, 1.0779, 4.1998, 4.1373, 0.5416, 0.0000, 0.1646, 1.7768, 1.6595])
    torch.testing.assert_close(features, expected, atol=1e-3, rtol=0)


# ---- preprocessing and forward -------------------------------------------------------------------


def test_preprocess_squash_and_imagenet_normalisation():
    model = _mini(0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    for value, unit in ((-1.0, 0.0), (1.0, 1.0), (0.0, 0.5)):
        x = model.preprocess(torch.full((2, 3, 40, 90), value))  # non-square: squashed, not cropped
        assert x.shape == (2, 3, 64, 64)
        torch.testing.assert_close(x, ((unit - mean) / std).expand_as(x))
    # value_range=(0, 1) takes ToTensor-style input and gives the same network input.
    images = _images(2, 80, 48)
    model01 = _mini(0, value_range=(0, 1))
    torch.testing.assert_close(model01.preprocess((images + 1) / 2), model.preprocess(images))
    # At input_size already: no resampling, only the affine map.
    same = _images(1, 64, 64)
    torch.testing.assert_close(model.preprocess(same), ((same + 1) / 2 - mean) / std)
    with pytest.raises(ValueError, match="B, 3, H, W"):
        model.preprocess(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match="float"):
        model.preprocess(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_forward_shapes_mini_64_and_resnet50_256():
    mini = _mini(0)
    resnet = build_classifier("resnet50", generator=make_generator(0)).eval()
    assert resnet.input_size == 256
    with torch.no_grad():
        assert mini(_images(3, 64, 64)).shape == (3, 2)
        assert mini(_images(2, 100, 70)).shape == (2, 2)
        assert mini.extract_features(_images(2, 64, 64)).shape == (2, 128)
        pooled = []
        resnet.avgpool.register_forward_hook(lambda m, i, o: pooled.append(o.shape))
        assert resnet(_images(1, 256, 256)).shape == (1, 2)  # one full-size pass (~1 s on CPU)
        assert pooled == [(1, 2048, 1, 1)]  # §5.2: the pooled 2048-d features, from an 8×8 map


def test_predict_proba_is_softmax_class_1():
    model = _mini(0)
    images = _images(4, 64, 64)
    with torch.no_grad():
        p = model.predict_proba(images)
        logits = model(images)
    assert p.shape == (4,)
    assert torch.all((p >= 0) & (p <= 1))
    probs = torch.softmax(logits, dim=1)
    torch.testing.assert_close(p, probs[:, 1])
    torch.testing.assert_close(p + probs[:, 0], torch.ones(4))


# ---- checkpoints ---------------------------------------------------------------------------------


def test_authors_checkpoint_round_trip(tmp_path):
    source = build_classifier("resnet50", generator=make_generator(1))
    with torch.no_grad():
        source.layer1[0].bn1.running_mean.normal_(generator=make_generator(2))  # buffers travel too
    path = tmp_path / "model_state_dict.pth"
    torch.save(source.state_dict(), path)  # the authors' format: a plain torchvision state dict
    target = build_classifier("resnet50", generator=make_generator(3))
    assert target.load_authors_checkpoint(path) is target
    got, want = target.state_dict(), source.state_dict()
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_authors_checkpoint_is_loaded_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "extra": _Unpicklable()}, path)
    with pytest.raises(pickle.UnpicklingError, match="evil.pth"):
        _mini().load_authors_checkpoint(path)


class _Unpicklable:
    """A custom class: ``torch.load(weights_only=True)`` must refuse to build it."""


def test_mismatching_checkpoint_names_file_and_keys(tmp_path):
    path = tmp_path / "mini_state_dict.pth"
    torch.save(_mini().state_dict(), path)
    with torch.device("meta"):
        resnet = build_classifier("resnet50")
    with pytest.raises(CheckpointMismatchError) as err:
        resnet.load_authors_checkpoint(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "missing keys" in msg and "layer1.0.conv3.weight" in msg
    assert "shape mismatches" in msg and "conv1.weight (16, 3, 7, 7) vs model (64, 3, 7, 7)" in msg

    state = _mini().state_dict()
    extra = tmp_path / "extra.pth"
    torch.save({**state, "head.weight": torch.zeros(2)}, extra)
    with pytest.raises(CheckpointMismatchError, match=r"unexpected keys \(1\): head.weight"):
        _mini().load_authors_checkpoint(extra)

    wrapped = tmp_path / "ddp.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, wrapped)
    with pytest.raises(CheckpointMismatchError, match="every key starts with 'module.'"):
        _mini().load_authors_checkpoint(wrapped)

    not_a_state_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_state_dict)
    with pytest.raises(CheckpointMismatchError, match="plain state dict"):
        _mini().load_authors_checkpoint(not_a_state_dict)


def test_load_imagenet_backbone_skips_the_1000_way_fc(tmp_path):
    imagenet = _mini(5, num_classes=1000)  # stands in for torchvision's resnet50 ImageNet .pth
    path = tmp_path / "resnet_imagenet.pth"
    torch.save(imagenet.state_dict(), path)
    model = _mini(6)
    fc_before = model.fc.weight.clone()
    assert model.load_imagenet_backbone(path) is model
    for k, v in model.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(v, imagenet.state_dict()[k]), k
    assert torch.equal(model.fc.weight, fc_before)

    with torch.device("meta"):
        resnet = build_classifier("resnet50")
    with pytest.raises(CheckpointMismatchError, match="resnet_imagenet.pth"):
        resnet.load_imagenet_backbone(path)


# ---- linear probe --------------------------------------------------------------------------------


def test_freeze_backbone_trains_only_fc():
    model = _mini(0).freeze_backbone()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    model.train()
    assert model.training and model.fc.training
    assert not model.bn1.training and not model.layer3[0].bn1.training  # BN stats stay pretrained
    stats = model.layer2[0].bn1.running_mean.clone()
    model(_images(2, 64, 64)).sum().backward()
    assert torch.equal(model.layer2[0].bn1.running_mean, stats)
    assert model.fc.weight.grad is not None and model.conv1.weight.grad is None

    model.freeze_backbone(False)
    assert all(p.requires_grad for p in model.parameters())
    assert model.bn1.training
