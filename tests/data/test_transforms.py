"""Transforms: the paper's pipeline and the batched tensor path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from spectral_probe.data import (
    HALF_MEAN,
    HALF_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TensorImageDataset,
    TensorImageTransform,
    image_transform,
    paper_test_transform,
    paper_train_transform,
)
from spectral_probe.data.transforms import INTERPOLATIONS, check_interpolation
from spectral_probe.errors import DataError

GREY = (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)  # mean, std that keep grey levels 0..255


def _gradient_image(w: int = 300, h: int = 200) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    rgb = np.concatenate(
        [np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)), np.full((h, w, 1), 30.0)],
        axis=2,
    )
    return Image.fromarray(rgb.astype(np.uint8))


def test_solid_colour_normalises_exactly() -> None:
    image = Image.new("RGB", (300, 250), (200, 100, 50))
    expected = (torch.tensor([200, 100, 50]) / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(
        IMAGENET_STD
    )
    for t in (paper_train_transform(), paper_test_transform()):
        out = t(image)
        assert out.shape == (3, 224, 224) and out.dtype == torch.float32
        assert torch.allclose(out.mean(dim=(1, 2)), expected, atol=1e-5)
    half = paper_test_transform(96, 110, HALF_MEAN, HALF_STD)(image)
    assert half.shape == (3, 96, 96)
    assert torch.allclose(half[:, 0, 0], torch.tensor([200, 100, 50]) / 127.5 - 1, atol=1e-5)


def test_test_transform_is_resize_then_centre_crop() -> None:
    image = _gradient_image()
    out = paper_test_transform(mean=(0, 0, 0), std=(1, 1, 1))(image)
    ref = (
        np.asarray(image.resize((256, 256), Image.BILINEAR), dtype=np.float32)[16:240, 16:240] / 255
    )
    assert np.abs(out.permute(1, 2, 0).numpy() - ref).max() < 2 / 255


def test_ten_crop_stacks_corners_centre_and_flips() -> None:
    image = _gradient_image()
    crops = paper_test_transform(ten_crop=True)(image)
    assert crops.shape == (10, 3, 224, 224)
    centre = paper_test_transform()(image)
    assert torch.allclose(crops[4], centre)
    # crops 5..9 are the same five taken from the flipped image
    assert torch.allclose(
        crops[5], crops[1].flip(-1), atol=1e-6
    )  # its top-left = mirrored top-right
    assert torch.allclose(crops[9], crops[4].flip(-1), atol=1e-6)


def test_grayscale_and_tensor_inputs_become_rgb() -> None:
    gray = Image.new("L", (40, 30), 128)
    assert paper_train_transform(64, 72)(gray).shape == (3, 64, 64)
    tensor = torch.full((1, 28, 28), 128, dtype=torch.uint8)
    assert paper_test_transform(64, 72)(tensor).shape == (3, 64, 64)


def test_tensor_eval_path_matches_a_float_reference() -> None:
    torch.manual_seed(0)
    x = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    for size in (8, 32, 64, 224):
        out = TensorImageTransform(size)(x)
        assert out.shape == (6, 3, size, size)
        ref = F.interpolate(
            x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        ref = (ref / 255 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
            IMAGENET_STD
        ).view(1, 3, 1, 1)
        assert (out - ref).abs().max() <= 1.01 / 255 / min(
            IMAGENET_STD
        )  # uint8 resize: within a grey level
        assert torch.allclose(
            TensorImageTransform(size)(x[2]), out[2]
        )  # one image == its row of the batch


def _random_image(h: int, w: int, seed: int) -> torch.Tensor:
    return torch.randint(
        0, 256, (3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize(("h", "w", "size"), [(28, 28, 64), (37, 23, 16), (20, 30, 24)])
def test_tensor_path_matches_the_pil_path(mode: str, h: int, w: int, size: int) -> None:
    """Noise is the worst case (bicubic overshoots everywhere): a few grey levels at most from PIL."""
    x = _random_image(h, w, seed=h * w)
    pil = Image.fromarray(x.permute(1, 2, 0).numpy())
    # the PIL path (torchvision on a PIL image: whole image, crop = resize) is PIL's own filter
    ref = paper_test_transform(size, size, *GREY, interpolation=mode)(pil)
    own = getattr(Image, mode.upper())
    exact = torch.from_numpy(np.array(pil.resize((size, size), own))).permute(2, 0, 1).float()
    assert (ref - exact).abs().max() < 1e-3
    t = TensorImageTransform(size, *GREY, interpolation=mode)
    for what, inputs in (("uint8 (CPU kernel)", x), ("float (device path)", x.float())):
        out = t(inputs)
        assert out.min() >= 0 and out.max() <= 255, what  # bicubic clamped to the pixel range
        diff = (out - ref).abs()
        assert diff.max() <= 5 and diff.mean() <= 0.5, (what, diff.max().item(), diff.mean().item())


def test_bicubic_differs_from_bilinear_and_stays_in_range() -> None:
    edges = (
        (torch.arange(8).view(1, 8) // 2 % 2 * 255).expand(8, 8).to(torch.uint8)[None]
    )  # hard edges
    bil = TensorImageTransform(40, *GREY)(edges)
    bic = TensorImageTransform(40, *GREY, interpolation="bicubic")
    for inputs in (edges, edges.float()):
        out = bic(inputs)
        assert out.min() == 0 and out.max() == 255 and (out - bil).abs().max() > 10
    torch.manual_seed(0)
    crops = TensorImageTransform(40, *GREY, train=True, interpolation="bicubic")(
        edges.expand(4, 1, 8, 8)
    )
    assert crops.min() >= 0 and crops.max() <= 255


def test_nearest_repeats_pixels_on_both_paths() -> None:
    x = _random_image(14, 14, seed=1)
    want = x.repeat_interleave(2, -1).repeat_interleave(2, -2).float()
    assert torch.equal(TensorImageTransform(28, *GREY, interpolation="nearest")(x), want)
    pil = Image.fromarray(x.permute(1, 2, 0).numpy())
    assert torch.allclose(
        paper_test_transform(28, 28, *GREY, interpolation="nearest")(pil), want, atol=1e-3
    )


def test_interpolation_names() -> None:
    from torchvision.transforms import InterpolationMode

    assert INTERPOLATIONS == ("bilinear", "bicubic", "nearest")
    assert check_interpolation("BICUBIC") == "bicubic"
    assert check_interpolation(InterpolationMode.BILINEAR) == "bilinear"
    assert check_interpolation("nearest-exact") == "nearest"  # torchvision's name for PIL's
    assert TensorImageTransform(8).interpolation == "bilinear"  # the default is unchanged
    assert "interpolation='bicubic'" in repr(TensorImageTransform(8, interpolation="bicubic"))


def test_tensor_train_path_crops_and_flips_per_sample() -> None:
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(64, 3, 1, 1) * 10
    # with the whole image as the crop, each sample is the image or its mirror, exactly
    t = TensorImageTransform(
        4, (0, 0, 0), (1 / 255, 1 / 255, 1 / 255), train=True, crop_scale=(1, 1), ratio=(1, 1)
    )
    torch.manual_seed(1)
    out = t(x)
    same = (out == x.float()).flatten(1).all(1)
    mirrored = (out == x.float().flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54
    # random crops differ across the batch, and the seed fixes them
    t = TensorImageTransform(32, train=True)
    torch.manual_seed(2)
    a = t(x)
    torch.manual_seed(2)
    assert torch.equal(a, t(x)) and not torch.allclose(a[0], a[1])


def test_constant_image_stays_constant_under_training_crops() -> None:
    x = torch.full((5, 1, 28, 28), 77, dtype=torch.uint8)
    out = TensorImageTransform(64, train=True)(x)
    expected = (77 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(out, expected.view(1, 3, 1, 1).expand_as(out), atol=1e-5)


def test_image_transform_picks_by_dataset() -> None:
    tensor_ds = TensorImageDataset(
        torch.zeros(2, 1, 8, 8, dtype=torch.uint8), [0, 1], ["a", "b"], name="t", split="train"
    )
    t = image_transform(tensor_ds, train=True, size=32)
    assert isinstance(t, TensorImageTransform) and t.train_mode and t.interpolation == "bilinear"
    t = image_transform(tensor_ds, train=False, size=32, interpolation="bicubic")
    assert t.interpolation == "bicubic"

    class Files:
        kind = "image"

    assert image_transform(Files(), train=False, size=224)(Image.new("RGB", (50, 50))).shape == (
        3,
        224,
        224,
    )
    assert image_transform(Files(), train=False, ten_crop=True)(
        Image.new("RGB", (50, 50))
    ).shape == (10, 3, 224, 224)
    for train in (True, False):
        files = image_transform(Files(), train=train, size=32, interpolation="bicubic")
        resizes = [t for t in files.transforms if hasattr(t, "interpolation")]
        assert resizes and all(t.interpolation.value == "bicubic" for t in resizes)

    class Text:
        kind = "text"

    with pytest.raises(DataError, match="expected an image dataset, found kind 'text'"):
        image_transform(Text(), train=True)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: paper_train_transform(0), "expected a positive integer image size, found 0"),
        (
            lambda: paper_test_transform(224, 200),
            "expected a resize of at least the crop size 224, found 200",
        ),
        (
            lambda: paper_test_transform(mean=(0.5,), std=(0.5,)),
            "expected 3-channel mean and std, found 1 and 1 values",
        ),
        (
            lambda: TensorImageTransform(32, std=(1, 0, 1)),
            r"expected a positive std per channel, found \(1, 0, 1\)",
        ),
        (
            lambda: TensorImageTransform(32, crop_scale=(0.9, 0.5)),
            "expected 0 < min <= max <= 1 for crop_scale",
        ),
        (
            lambda: TensorImageTransform(32, interpolation="lanczos"),
            "expected an interpolation in bilinear, bicubic, nearest, found 'lanczos'",
        ),
        (
            lambda: paper_train_transform(interpolation="area"),
            "expected an interpolation in bilinear, bicubic, nearest, found 'area'",
        ),
        (
            lambda: TensorImageTransform(32)(torch.zeros(2, 2, 8, 8)),
            r"expected an image tensor .* found shape \(2, 2, 8, 8\)",
        ),
    ],
)
def test_bad_parameters(make: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        make()  # type: ignore[operator]
