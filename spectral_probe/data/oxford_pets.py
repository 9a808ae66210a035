"""Oxford-IIIT Pet (``oxford-pets:ROOT``), the official layout.

``ROOT`` is the folder holding (or the ``oxford-iiit-pet`` folder with)::

    images/Abyssinian_1.jpg ...
    annotations/trainval.txt     <image> <class id 1..37> <species 1 cat/2 dog> <breed id>
    annotations/test.txt

``train`` is the official trainval list (3,680 images), ``test`` the test list (3,669), 37
breeds. Class names come from the image names (``american_bulldog_12`` →
``american_bulldog``; cat breeds are capitalised in the data set itself).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ._base import ImageFileDataset, Transform, check_labels, check_nonempty_classes
from ._layout import check_first_image, locate_root, read_columns
from .spec import register_dataset

__all__ = ["load_oxford_pets"]

_LIST = {"train": "trainval.txt", "test": "test.txt"}


def _parse(rows: list[list[str]], path: Path) -> list[tuple[str, int]]:
    out = []
    for image, class_id, *_ in rows:
        if not class_id.isdigit():
            raise DataError(
                f"expected an integer class id in {path}, found {class_id!r} for {image}"
            )
        out.append((image, int(class_id)))
    return out


@register_dataset(
    "oxford-pets",
    kind="image",
    usage="oxford-pets:/path/to/oxford-iiit-pet",
    summary="Oxford-IIIT Pet: images/*.jpg, annotations/trainval.txt (train), annotations/test.txt",
)
def load_oxford_pets(
    root: Path | None, split: str, transform: Transform | None = None
) -> ImageFileDataset:
    """Load ``split`` (``train`` = trainval, ``test``) of Oxford-IIIT Pet."""
    base = locate_root(root, "oxford-pets", "annotations", ["oxford-iiit-pet"])
    paths_by_split = {s: base / "annotations" / f for s, f in _LIST.items()}
    entries = {
        s: _parse(read_columns(p, "the Oxford-IIIT Pet list", 2), p)
        for s, p in paths_by_split.items()
        if s == split or p.is_file()
    }
    # Class names from every list present, so train and test share one index.
    names: dict[int, str] = {}
    for pairs in entries.values():
        for image, cid in pairs:
            names.setdefault(cid, image.rsplit("_", 1)[0])
    classes = [names.get(i, f"class_{i}") for i in range(1, max(names, default=0) + 1)]
    list_path = paths_by_split[split]
    check_labels([cid for _, cid in entries[split]], len(classes), str(list_path), offset=1)
    targets = [cid - 1 for _, cid in entries[split]]
    if split == "train":
        check_nonempty_classes(targets, classes, f"oxford-pets train ({list_path})")
    paths = [str(base / "images" / f"{image}.jpg") for image, _ in entries[split]]
    check_first_image(paths, "oxford-pets", list_path)
    return ImageFileDataset(
        paths, targets, classes, name="oxford-pets", split=split, transform=transform
    )
