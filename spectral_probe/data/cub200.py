"""CUB-200-2011 (``cub200:ROOT``), the official layout.

``ROOT`` is the ``CUB_200_2011`` folder (or the folder it was extracted into)::

    CUB_200_2011/
      images.txt               <image_id> <relative path under images/>
      image_class_labels.txt   <image_id> <class_id, 1-based>
      train_test_split.txt     <image_id> <1 = train, 0 = test>
      classes.txt              <class_id> <name, e.g. 001.Black_footed_Albatross>
      images/<class folder>/<file>.jpg

Class names drop the ``NNN.`` prefix (``Black_footed_Albatross``). 5,994 train and 5,794
test images in 200 classes.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from ._base import ImageFileDataset, Transform, check_labels, check_nonempty_classes
from ._layout import check_first_image, locate_root, read_columns
from .spec import register_dataset

__all__ = ["load_cub200"]


def _by_id(path: Path, what: str) -> dict[str, str]:
    return {row[0]: row[1] for row in read_columns(path, what, 2, maxsplit=1)}


@register_dataset(
    "cub200",
    kind="image",
    usage="cub200:/path/to/CUB_200_2011",
    summary="CUB-200-2011: images.txt, image_class_labels.txt, train_test_split.txt, "
    "classes.txt, images/",
)
def load_cub200(
    root: Path | None, split: str, transform: Transform | None = None
) -> ImageFileDataset:
    """Load ``split`` (``train``/``test``) of CUB-200-2011 from its official list files."""
    base = locate_root(root, "cub200", "images.txt", ["CUB_200_2011"])
    images = read_columns(base / "images.txt", "the CUB-200-2011 image list", 2, maxsplit=1)
    labels = _by_id(base / "image_class_labels.txt", "the CUB-200-2011 label list")
    is_train = _by_id(base / "train_test_split.txt", "the CUB-200-2011 split list")
    class_rows = read_columns(base / "classes.txt", "the CUB-200-2011 class list", 2, maxsplit=1)
    classes = [re.sub(r"^\d+\.", "", name) for _, name in class_rows]

    want = "1" if split == "train" else "0"
    paths: list[str] = []
    all_labels: list[int] = []
    chosen: list[bool] = []
    for image_id, rel in images:
        for table, fname in (
            (labels, "image_class_labels.txt"),
            (is_train, "train_test_split.txt"),
        ):
            if image_id not in table:
                raise DataError(
                    f"expected image id {image_id} (from images.txt) in {base / fname}, "
                    "found no entry"
                )
        if not labels[image_id].strip().isdigit():
            raise DataError(
                f"expected an integer class id for image {image_id} in "
                f"{base / 'image_class_labels.txt'}, found {labels[image_id]!r}"
            )
        all_labels.append(int(labels[image_id]))
        chosen.append(is_train[image_id].strip() == want)
        if chosen[-1]:
            paths.append(str(base / "images" / rel))
    # Every label is checked, whichever split is asked for.
    check_labels(all_labels, len(classes), str(base / "image_class_labels.txt"), offset=1)
    targets = [t - 1 for t, keep in zip(all_labels, chosen, strict=True) if keep]
    if split == "train":
        check_nonempty_classes(targets, classes, f"cub200 train ({base / 'train_test_split.txt'})")
    check_first_image(paths, "cub200", base / "images.txt")
    return ImageFileDataset(
        paths, targets, classes, name="cub200", split=split, transform=transform
    )
