"""Building without initialising: the same model, tensor for tensor, as a build plus a copying load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from spectral_probe.analysis import compare_weights
from spectral_probe.models import load_model
from spectral_probe.models._empty import assign_state, build_empty, can_assign, has_meta_tensors
from spectral_probe.models.bundled import _lite_state_dict


def _same_model(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert torch.equal(sa[k], sb[k]), k
    assert [p.requires_grad for p in a.parameters()] == [p.requires_grad for p in b.parameters()]
    assert all(isinstance(p, nn.Parameter) for p in a.parameters())
    assert not has_meta_tensors(a)
    assert a.training == b.training


Pair = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], Path]


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], object]:
    """A random ResNet-18 state dict and a perturbed copy, as .pt and .safetensors files."""
    torch.manual_seed(0)
    a = {k: v.clone() for k, v in torchvision.models.resnet18().state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    b = {
        k: v + 1e-3 * v.std() * torch.randn(v.shape, generator=gen)
        if v.is_floating_point() and v.numel() > 1
        else v
        for k, v in a.items()
    }
    root = tmp_path_factory.mktemp("pair")
    for name, state in (("a", a), ("b", b)):
        torch.save(state, root / f"{name}.pt")
        save_file(state, str(root / f"{name}.safetensors"))
    return a, b, root


def _reference(state: dict[str, torch.Tensor]) -> nn.Module:
    """The old way: a randomly initialised build, then a copying load."""
    model = torchvision.models.resnet18()
    model.load_state_dict(state)
    return model.eval()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_checkpoint_loads_the_same_model(pair: Pair, suffix: str) -> None:
    a, _, root = pair
    loaded = load_model(str(root / f"a{suffix}"), arch="torchvision:resnet18")
    ref = _reference(a)
    _same_model(loaded.model, ref)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded.model(x), ref(x))


def test_loaded_tensors_are_writable_without_touching_the_file(pair: Pair) -> None:
    a, _, root = pair
    loaded = load_model(str(root / "a.pt"), arch="torchvision:resnet18")
    with torch.no_grad():
        loaded.model.get_parameter("fc.weight").add_(1.0)
    again = torch.load(root / "a.pt", weights_only=True)
    assert torch.equal(again["fc.weight"], a["fc.weight"])


def test_compare_weights_numbers_unchanged(pair: Pair) -> None:
    """compare_weights on the files equals compare_weights on models built and loaded the old way."""
    a, b, root = pair
    new = compare_weights(
        str(root / "a.pt"),
        str(root / "b.safetensors"),
        arch_a="torchvision:resnet18",
        arch_b="torchvision:resnet18",
        include=r"layer1\.0\.|fc",
        device="cpu",
    )
    old = compare_weights(_reference(a), _reference(b), include=r"layer1\.0\.|fc", device="cpu")
    assert len(new.layers) == 3  # layer1.0.conv1, layer1.0.conv2, fc
    cols = ["layer", "index", "sigma_a", "sigma_b", "cos", "cos_window", "sin_bound"]
    assert new.angles[cols].equals(old.angles[cols])
    assert new.principal.equals(old.principal)


def test_half_precision_file_is_cast_like_a_copying_load(pair: Pair, tmp_path: Path) -> None:
    a, _, _ = pair
    half = {k: v.half() if v.is_floating_point() else v for k, v in a.items()}
    torch.save(half, tmp_path / "half.pt")
    loaded = load_model(str(tmp_path / "half.pt"), arch="torchvision:resnet18")
    _same_model(loaded.model, _reference(half))
    assert loaded.model.get_parameter("fc.weight").dtype == torch.float32


def test_bundled_weights_same_as_a_copying_load() -> None:
    import timm

    loaded = load_model("bundled:efficientnet_lite0")
    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    ref.load_state_dict(_lite_state_dict("efficientnet_lite0", ref.state_dict()))
    _same_model(loaded.model, ref.eval())


class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(4, 4)
        self.dec = nn.Linear(4, 4)
        self.dec.weight = self.enc.weight


class _Scratch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.register_buffer("scratch", torch.zeros(3), persistent=False)


def test_can_assign_refuses_ties_and_non_persistent_buffers() -> None:
    assert can_assign(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    assert not can_assign(_Tied())
    assert not can_assign(_Scratch())


def test_build_empty() -> None:
    model = build_empty(lambda: nn.Linear(3, 2))
    assert model is not None and has_meta_tensors(model)
    assign_state(model, {"weight": torch.ones(2, 3, dtype=torch.float64), "bias": torch.zeros(2)})
    assert not has_meta_tensors(model) and model.weight.dtype == torch.float32
    assert torch.equal(model(torch.ones(1, 3)), torch.full((1, 2), 3.0))

    def needs_data() -> nn.Module:
        n = int(torch.tensor(3).item())  # data-dependent: impossible on meta
        return nn.Linear(n, 2)

    assert build_empty(needs_data) is None
