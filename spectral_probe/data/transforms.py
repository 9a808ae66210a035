"""Image transforms: the paper's pipeline, and a fast tensor path for small in-memory images.

The model decides the normalisation: pass its ``mean``/``std`` (ImageNet statistics for
torchvision ResNets, :data:`HALF_MEAN`/:data:`HALF_STD` for EfficientNet-Lite), and may state
its resizing filter: ``interpolation`` is one of :data:`INTERPOLATIONS` (``"bilinear"`` by
default, as in the paper's released code; EfficientNet-Lite was trained with ``"bicubic"``).

* :func:`paper_train_transform`: resize to 256×256, random-resized-crop 224, horizontal
  flip (the authors' released code), then normalise. PIL images or ``uint8`` tensors.
* :func:`paper_test_transform`: resize to 256×256 and centre-crop 224, or ten crops
  (four corners and centre, and their flips) stacked into a ``(10, 3, 224, 224)`` tensor.
* :class:`TensorImageTransform`: for ``uint8`` tensors of shape ``(C, H, W)`` or batches
  ``(B, C, H, W)`` (Fashion-MNIST, digits): grayscale to three channels, resize to ``size``
  and normalise in a few tensor operations on the whole batch, with an optional batched
  random-resized-crop and flip for training. No PIL, no per-sample Python.
* :func:`image_transform`: picks the right one for a dataset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import DataError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "HALF_MEAN",
    "HALF_STD",
    "INTERPOLATIONS",
    "check_interpolation",
    "paper_train_transform",
    "paper_test_transform",
    "StackCrops",
    "TensorImageTransform",
    "image_transform",
    "resize_for",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
"""Resizing filters of the transforms (antialiased when shrinking, except ``nearest``)."""
_ALIASES = {"nearest-exact": "nearest"}  # torchvision's name for PIL's nearest neighbour


def check_interpolation(name: Any) -> str:
    """``name`` as one of :data:`INTERPOLATIONS` (case-insensitive; torchvision's
    ``InterpolationMode`` and ``"nearest-exact"`` are accepted).

    Raises:
        DataError: any other filter.
    """
    value = getattr(name, "value", name)  # torchvision's InterpolationMode
    key = value.strip().lower() if isinstance(value, str) else None
    key = _ALIASES.get(key, key) if key is not None else None
    if key not in INTERPOLATIONS:
        raise DataError(
            f"expected an interpolation in {', '.join(INTERPOLATIONS)}, found {value!r}"
        )
    return key


def _v2_interpolation(name: str) -> Any:
    """The torchvision mode for ``name`` (``nearest``: PIL's nearest neighbour, on tensors too)."""
    from .._torchvision import import_torchvision

    import_torchvision()
    from torchvision.transforms import InterpolationMode

    mode = check_interpolation(name)
    return InterpolationMode.NEAREST_EXACT if mode == "nearest" else InterpolationMode(mode)


def resize_for(size: int) -> int:
    """The paper's resize side for a crop of ``size``: ``round(size * 256 / 224)``.

    Example:
        >>> from spectral_probe.data import resize_for
        >>> resize_for(224), resize_for(64)
        (256, 73)
    """
    return round(size * 256 / 224)


def _check_sizes(size: int, resize: int | None = None) -> None:
    if not isinstance(size, int) or size < 1:
        raise DataError(f"expected a positive integer image size, found {size!r}")
    if resize is not None and (not isinstance(resize, int) or resize < size):
        raise DataError(f"expected a resize of at least the crop size {size}, found {resize!r}")


def _check_stats(mean: Sequence[float], std: Sequence[float]) -> None:
    if len(mean) != 3 or len(std) != 3:
        raise DataError(f"expected 3-channel mean and std, found {len(mean)} and {len(std)} values")
    if any(s <= 0 for s in std):
        raise DataError(f"expected a positive std per channel, found {tuple(std)}")


def _v2() -> Any:
    """torchvision's v2 transforms, imported on first use (torchvision takes ~2 s to import)."""
    from .._torchvision import import_torchvision

    import_torchvision()
    from torchvision.transforms import v2

    return v2


def _to_normalised_tensor(mean: Sequence[float], std: Sequence[float]) -> list[Any]:
    v2 = _v2()
    return [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean), list(std)),
    ]


def paper_train_transform(
    size: int = 224,
    resize: int = 256,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    *,
    interpolation: str = "bilinear",
) -> Any:
    """Resize to ``resize``², random-resized-crop ``size``, flip, normalise → ``(3, size, size)``.

    Returns a torchvision ``v2.Compose`` taking a PIL image or a ``uint8`` tensor. Both
    resizes use ``interpolation`` (one of :data:`INTERPOLATIONS`).
    """
    _check_sizes(size, resize)
    _check_stats(mean, std)
    mode = _v2_interpolation(interpolation)
    v2 = _v2()
    return v2.Compose(
        [
            v2.RGB(),
            v2.Resize((resize, resize), interpolation=mode, antialias=True),
            v2.RandomResizedCrop(size, interpolation=mode, antialias=True),
            v2.RandomHorizontalFlip(),
            *_to_normalised_tensor(mean, std),
        ]
    )


class StackCrops(torch.nn.Module):
    """Stack a tuple of ``(3, S, S)`` crops into one ``(n_crops, 3, S, S)`` tensor."""

    def forward(self, crops: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.stack([torch.as_tensor(c) for c in crops])


def paper_test_transform(
    size: int = 224,
    resize: int = 256,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    *,
    ten_crop: bool = False,
    interpolation: str = "bilinear",
) -> Any:
    """Resize to ``resize``², centre-crop ``size`` (or ten crops, stacked), normalise.

    Returns ``(3, size, size)``, or ``(10, 3, size, size)`` with ``ten_crop=True``: the
    four corner crops and the centre crop, then the same five of the flipped image
    (torchvision's ``TenCrop`` order). The paper sums the logits of the ten. The resize
    uses ``interpolation`` (one of :data:`INTERPOLATIONS`).
    """
    _check_sizes(size, resize)
    _check_stats(mean, std)
    mode = _v2_interpolation(interpolation)
    v2 = _v2()
    crop: list[Any] = (
        [v2.TenCrop(size), *_to_normalised_tensor(mean, std), StackCrops()]
        if ten_crop
        else [v2.CenterCrop(size), *_to_normalised_tensor(mean, std)]
    )
    return v2.Compose(
        [v2.RGB(), v2.Resize((resize, resize), interpolation=mode, antialias=True), *crop]
    )


class TensorImageTransform(torch.nn.Module):
    r"""Batched ``uint8`` image tensors to ``float``, 3 channels, ``size``², normalised.

    Accepts ``(C, H, W)`` or ``(B, C, H, W)`` with ``C`` of 1 or 3 and returns
    ``float32`` of shape ``(3, size, size)`` or ``(B, 3, size, size)``:

    .. math::

        y = \frac{\operatorname{resize}(x / 255) - \mu_c}{\sigma_c}.

    Evaluation resizes the whole image with ``interpolation`` (bilinear by default; bicubic
    and bilinear antialiased, as PIL's filters; on CPU in ``uint8``, which is several times
    faster and within a grey level or so of PIL; elsewhere in ``float32``, bicubic clamped
    to the pixel range after each pass, as PIL's ``uint8`` filter does). Training
    (``train=True``) instead takes, per sample, a random crop of area fraction in
    ``crop_scale`` and aspect ratio in ``ratio``, resized to ``size`` and flipped with
    probability 0.5, all in one ``affine_grid``/``grid_sample`` call on the batch (same
    filter, not antialiased; bicubic clamped).

    Args:
        size: output side in pixels (e.g. 32, 64, 96, 224).
        mean: per-channel mean of the model's normalisation.
        std: per-channel std.
        train: random crop and flip when True.
        crop_scale: range of the crop's area as a fraction of the image (training only).
        ratio: range of the crop's aspect ratio (training only).
        interpolation: the resizing filter, one of :data:`INTERPOLATIONS` (use the model's
            ``preprocessing.interpolation``: ``"bicubic"`` for EfficientNet-Lite).
    """

    batched = True  # takes (B, C, H, W) batches: datasets may transform whole batches
    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(
        self,
        size: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        *,
        train: bool = False,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        interpolation: str = "bilinear",
    ) -> None:
        super().__init__()
        _check_sizes(size)
        _check_stats(mean, std)
        self.interpolation = check_interpolation(interpolation)
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise DataError(f"expected 0 < min <= max <= 1 for crop_scale, found {crop_scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise DataError(f"expected 0 < min <= max for ratio, found {ratio}")
        self.size = size
        self.train_mode = train
        self.crop_scale = crop_scale
        self.ratio = ratio
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        # y = x * (1 / (255 std)) - mean / std, with x still in 0..255 after resizing
        self.register_buffer("scale", 1.0 / (255.0 * std_t), persistent=False)
        self.register_buffer("shift", -mean_t / std_t, persistent=False)

    def _random_crop_grid(
        self, batch: int, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        lo, hi = self.crop_scale
        area = torch.empty(batch, device=device).uniform_(lo, hi)
        log_r = torch.empty(batch, device=device).uniform_(
            math.log(self.ratio[0]), math.log(self.ratio[1])
        )
        aspect = torch.exp(log_r)
        w = torch.sqrt(area * aspect).clamp(max=1.0)  # crop width / image width
        h = torch.sqrt(area / aspect).clamp(max=1.0)
        cx = (torch.rand(batch, device=device) * 2 - 1) * (1 - w)  # centre in [-1, 1] coords
        cy = (torch.rand(batch, device=device) * 2 - 1) * (1 - h)
        flip = torch.where(torch.rand(batch, device=device) < 0.5, -1.0, 1.0)
        theta = torch.zeros(batch, 2, 3, device=device)
        theta[:, 0, 0] = w * flip
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = h
        theta[:, 1, 2] = cy
        return F.affine_grid(theta.to(dtype), [batch, 1, self.size, self.size], align_corners=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if (
            not isinstance(images, torch.Tensor)
            or images.ndim not in (3, 4)
            or images.shape[-3] not in (1, 3)
        ):
            found = (
                f"shape {tuple(images.shape)}"
                if isinstance(images, torch.Tensor)
                else type(images).__name__
            )
            raise DataError(
                "expected an image tensor (C, H, W) or (B, C, H, W) with C in (1, 3), "
                f"found {found}"
            )
        single = images.ndim == 3
        x = images.unsqueeze(0) if single else images
        bicubic = self.interpolation == "bicubic"
        if self.train_mode:
            x = x.to(torch.float32)
            grid = self._random_crop_grid(x.shape[0], x.dtype, x.device)
            x = F.grid_sample(
                x, grid, mode=self.interpolation, padding_mode="border", align_corners=False
            )
            if bicubic:
                x = x.clamp_(0.0, 255.0)
        elif x.shape[-2:] != (self.size, self.size):
            x = self._resize(x)
        # shift + x * scale in one pass; broadcasts one channel to three
        out = torch.addcmul(self.shift, x.to(torch.float32), self.scale)
        return out[0] if single else out

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` to ``(B, C, size, size)``, on the 0..255 scale."""
        size = (self.size, self.size)
        if self.interpolation == "nearest":  # PIL's nearest neighbour; uint8 everywhere
            return F.interpolate(x, size=size, mode="nearest-exact")
        mode = self.interpolation
        # uint8 bilinear/bicubic resizing has fast, antialiased CPU kernels (two passes, each
        # saturated to 0..255, like PIL's); elsewhere use float.
        if x.dtype == torch.uint8 and x.device.type == "cpu":
            return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)
        x = x.to(torch.float32)
        if mode == "bilinear":  # a convex combination: never leaves the pixel range
            return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)
        # bicubic overshoots at edges: width then height, clamped after each pass as PIL does
        x = F.interpolate(
            x, size=(x.shape[-2], self.size), mode=mode, align_corners=False, antialias=True
        ).clamp_(0.0, 255.0)
        return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True).clamp_(
            0.0, 255.0
        )

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, train={self.train_mode}, crop_scale={self.crop_scale}, "
            f"interpolation={self.interpolation!r}"
        )


def image_transform(
    dataset: Any,
    *,
    train: bool,
    size: int = 224,
    resize: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    ten_crop: bool = False,
    interpolation: str = "bilinear",
) -> Any:
    """The transform for ``dataset``: :class:`TensorImageTransform` for in-memory tensor
    datasets (batched, no PIL), the paper's transforms for image files.

    ``resize`` defaults to :func:`resize_for` ``(size)`` (256 for 224). ``ten_crop`` applies
    to image files at test time only. ``interpolation`` (one of :data:`INTERPOLATIONS`) is
    the resizing filter of either.
    """
    if getattr(dataset, "kind", "image") != "image":
        raise DataError(f"expected an image dataset, found kind {dataset.kind!r}")
    if getattr(dataset, "supports_batch_index", False):
        return TensorImageTransform(size, mean, std, train=train, interpolation=interpolation)
    resize = resize if resize is not None else resize_for(size)
    if train:
        return paper_train_transform(size, resize, mean, std, interpolation=interpolation)
    return paper_test_transform(
        size, resize, mean, std, ten_crop=ten_crop, interpolation=interpolation
    )
