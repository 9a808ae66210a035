"""MIT Indoor 67 (``mit-indoor67:ROOT``), the official layout.

``ROOT`` holds the extracted ``indoorCVPR_09.tar`` and the two split lists::

    ROOT/
      Images/<category>/<file>.jpg     67 category folders (the classes, sorted)
      TrainImages.txt                  <category>/<file>.jpg, 80 per category (5,360)
      TestImages.txt                   20 per category (1,340)
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ._base import ImageFileDataset, Transform, check_nonempty_classes, require_dir
from ._layout import check_first_image, read_lines
from .spec import register_dataset

__all__ = ["load_mit_indoor67"]

_LIST = {"train": "TrainImages.txt", "test": "TestImages.txt"}


@register_dataset(
    "mit-indoor67",
    kind="image",
    usage="mit-indoor67:/path/to/indoor67",
    summary="MIT Indoor 67: Images/<category>/*.jpg with TrainImages.txt, TestImages.txt",
)
def load_mit_indoor67(
    root: Path | None, split: str, transform: Transform | None = None
) -> ImageFileDataset:
    """Load ``split`` (``train``/``test``) of MIT Indoor 67 from its list files."""
    if root is None:  # the spec parser requires a root; this guards direct calls
        raise DataError("expected a root directory for mit-indoor67, found none")
    images_dir = require_dir(root / "Images", "the MIT Indoor 67 Images/")
    classes = sorted(
        p.name for p in images_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    index = {name: i for i, name in enumerate(classes)}
    list_path = root / _LIST[split]
    entries = [line.replace("\\", "/") for line in read_lines(list_path, "the MIT Indoor 67 list")]
    targets = []
    for i, rel in enumerate(entries, start=1):
        category = rel.split("/", 1)[0]
        if category not in index:
            raise DataError(
                f"expected a category folder of {images_dir} in {list_path} (line {i}), "
                f"found {category!r}"
            )
        targets.append(index[category])
    if split == "train":
        check_nonempty_classes(targets, classes, f"mit-indoor67 train ({list_path})")
    paths = [str(images_dir / rel) for rel in entries]
    check_first_image(paths, "mit-indoor67", list_path)
    return ImageFileDataset(
        paths, targets, classes, name="mit-indoor67", split=split, transform=transform
    )
