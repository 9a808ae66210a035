"""FGVC Aircraft (``fgvc-aircraft:ROOT``), the official ``fgvc-aircraft-2013b`` layout.

``ROOT`` is the folder holding ``fgvc-aircraft-2013b/`` (or that folder, or its ``data/``)::

    fgvc-aircraft-2013b/data/
      variants.txt                      one variant name per line (100), the class order
      images_variant_trainval.txt       <image id> <variant name, may contain spaces>
      images_variant_test.txt
      images/<image id>.jpg

As in the paper, ``train`` is the official train+val list (6,667 images) and ``test`` the
test list (3,333), labelled by the 100 variants.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ._base import ImageFileDataset, Transform, check_nonempty_classes
from ._layout import check_first_image, locate_root, read_columns, read_lines
from .spec import register_dataset

__all__ = ["load_fgvc_aircraft"]

_LIST = {"train": "images_variant_trainval.txt", "test": "images_variant_test.txt"}


@register_dataset(
    "fgvc-aircraft",
    kind="image",
    usage="fgvc-aircraft:/path/to/fgvc-aircraft-2013b",
    summary="FGVC Aircraft 2013b: data/variants.txt, images_variant_{trainval,test}.txt, images/",
)
def load_fgvc_aircraft(
    root: Path | None, split: str, transform: Transform | None = None
) -> ImageFileDataset:
    """Load ``split`` (``train`` = trainval, ``test``) of FGVC Aircraft by variant."""
    base = locate_root(root, "fgvc-aircraft", "variants.txt", ["data", "fgvc-aircraft-2013b/data"])
    classes = read_lines(base / "variants.txt", "the FGVC Aircraft variant list")
    index = {name: i for i, name in enumerate(classes)}
    list_path = base / _LIST[split]
    rows = read_columns(list_path, "the FGVC Aircraft image list", 2, maxsplit=1)
    targets = []
    for i, (_, variant) in enumerate(rows, start=1):
        if variant not in index:
            raise DataError(
                f"expected a variant from variants.txt in {list_path} (line {i}), found {variant!r}"
            )
        targets.append(index[variant])
    if split == "train":
        check_nonempty_classes(targets, classes, f"fgvc-aircraft train ({list_path})")
    paths = [str(base / "images" / f"{image_id}.jpg") for image_id, _ in rows]
    check_first_image(paths, "fgvc-aircraft", list_path)
    return ImageFileDataset(
        paths, targets, classes, name="fgvc-aircraft", split=split, transform=transform
    )
