"""Stanford Dogs (``stanford-dogs:ROOT``), the official layout.

``ROOT`` holds the extracted ``images.tar`` and ``lists.tar``::

    ROOT/
      Images/n02085620-Chihuahua/n02085620_10074.jpg ...   (120 class folders)
      train_list.mat, test_list.mat                          (or under ROOT/lists/)

Each list holds ``file_list`` (paths relative to ``Images/``) and ``labels`` (1-based,
in the order of the sorted class folders). Class names drop the WordNet id
(``n02085620-Chihuahua`` → ``Chihuahua``). 12,000 train and 8,580 test images.
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
from ._layout import check_first_image, load_mat
from .spec import register_dataset

__all__ = ["load_stanford_dogs"]


@register_dataset(
    "stanford-dogs",
    kind="image",
    usage="stanford-dogs:/path/to/stanford-dogs",
    summary="Stanford Dogs: Images/<wnid-name>/*.jpg with train_list.mat, test_list.mat",
)
def load_stanford_dogs(
    root: Path | None, split: str, transform: Transform | None = None
) -> ImageFileDataset:
    """Load ``split`` (``train``/``test``) of Stanford Dogs from its ``.mat`` lists."""
    if root is None:  # the spec parser requires a root; this guards direct calls
        raise DataError("expected a root directory for stanford-dogs, found none")
    images_dir = require_dir(root / "Images", "the Stanford Dogs Images/")
    fname = f"{split}_list.mat"
    list_path = find_first(
        [root / fname, root / "lists" / fname], f"the Stanford Dogs list {fname}"
    )
    mat = load_mat(list_path, "the Stanford Dogs list", ["file_list", "labels"])
    files = [str(f) for f in np.atleast_1d(mat["file_list"]).tolist()]
    labels = np.atleast_1d(mat["labels"]).astype(np.int64)
    if len(files) != labels.size:
        raise DataError(
            f"expected one label per file in {list_path}, "
            f"found {len(files)} files and {labels.size} labels"
        )
    folders = sorted(p.name for p in images_dir.iterdir() if p.is_dir())
    check_labels(labels, len(folders), str(list_path), offset=1)
    for i, (rel, label) in enumerate(zip(files, labels.tolist(), strict=True)):
        folder = rel.replace("\\", "/").split("/", 1)[0]
        if folder != folders[label - 1]:
            raise DataError(
                f"expected label {label} to be class folder {folders[label - 1]!r} in "
                f"{list_path} (entry {i + 1}), found {folder!r}"
            )
    classes = [f.split("-", 1)[1] if "-" in f else f for f in folders]
    targets = (labels - 1).tolist()
    if split == "train":
        check_nonempty_classes(targets, classes, f"stanford-dogs train ({list_path})")
    paths = [str(images_dir / rel) for rel in files]
    check_first_image(paths, "stanford-dogs", list_path)
    return ImageFileDataset(
        paths, targets, classes, name="stanford-dogs", split=split, transform=transform
    )
