"""Stanford Cars (``stanford-cars:ROOT``), the official devkit layout (as torchvision reads it).

``ROOT`` is the ``stanford_cars`` folder (or the folder holding it)::

    stanford_cars/
      cars_train/00001.jpg ...            cars_test/00001.jpg ...
      devkit/cars_meta.mat                class_names (196 names)
      devkit/cars_train_annos.mat         annotations: bbox_x1..bbox_y2, class (1-based), fname
      cars_test_annos_withlabels.mat      the same for the test images (or under devkit/)

8,144 train and 8,041 test images in 196 classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ._base import (
    ImageFileDataset,
    Transform,
    check_labels,
    check_nonempty_classes,
    find_first,
    require_dir,
)
from ._layout import check_first_image, load_mat, locate_root
from .spec import register_dataset

__all__ = ["load_stanford_cars"]


def _annotations(path: Path) -> tuple[list[str], np.ndarray]:
    annos = np.atleast_1d(
        load_mat(path, "the Stanford Cars annotations", ["annotations"])["annotations"]
    )
    names = annos.dtype.names or ()
    if "fname" not in names or "class" not in names:
        raise DataError(
            f"expected annotation fields ['class', 'fname'] in {path}, found {sorted(names)}"
        )
    files = [str(f) for f in annos["fname"].tolist()]
    labels = np.asarray(annos["class"].tolist(), dtype=np.int64).reshape(-1)
    return files, labels


@register_dataset(
    "stanford-cars",
    kind="image",
    usage="stanford-cars:/path/to/stanford_cars",
    summary="Stanford Cars devkit: cars_train/, cars_test/, devkit/*.mat, "
    "cars_test_annos_withlabels.mat",
)
def load_stanford_cars(
    root: Path | None, split: str, transform: Transform | None = None
) -> ImageFileDataset:
    """Load ``split`` (``train``/``test``) of Stanford Cars from the devkit annotations."""
    base = locate_root(root, "stanford-cars", "devkit", ["stanford_cars"])
    meta = load_mat(
        base / "devkit" / "cars_meta.mat", "the Stanford Cars class list", ["class_names"]
    )
    classes = [str(c) for c in np.atleast_1d(meta["class_names"]).tolist()]
    if split == "train":
        annos_path = base / "devkit" / "cars_train_annos.mat"
    else:
        fname = "cars_test_annos_withlabels.mat"
        annos_path = find_first(
            [base / fname, base / "devkit" / fname], f"the Stanford Cars test labels {fname}"
        )
    files, labels = _annotations(annos_path)
    check_labels(labels, len(classes), str(annos_path), offset=1)
    targets = (labels - 1).tolist()
    if split == "train":
        check_nonempty_classes(targets, classes, f"stanford-cars train ({annos_path})")
    images_dir = require_dir(base / f"cars_{split}", f"the Stanford Cars cars_{split}/")
    paths = [str(images_dir / f) for f in files]
    check_first_image(paths, "stanford-cars", annos_path)
    return ImageFileDataset(
        paths, targets, classes, name="stanford-cars", split=split, transform=transform
    )
