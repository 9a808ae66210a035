"""Tiny on-disk datasets in each official layout, for tests across the project.

Every ``make_*`` writes into ``root`` and returns the path to put in a data spec
(``f"cub200:{make_cub200(tmp_path)}"``). Conventions shared by all image generators:

* ``n_classes`` classes, ``per_class`` training images and ``test_per_class`` test
  images per class (train and test images are interleaved in list files, as in the
  real data);
* every image is a solid ``size``×``size`` square of :func:`class_color` (``class``), so a
  test can check that each image carries its own label;
* class names are realistic for the data set (spaces, hyphens, slashes where the real
  data has them).
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "class_color",
    "write_image",
    "make_imagefolder",
    "make_cub200",
    "make_stanford_dogs",
    "make_stanford_cars",
    "make_oxford_pets",
    "make_fgvc_aircraft",
    "make_mit_indoor67",
    "write_idx",
    "fake_fashion_mnist_arrays",
    "make_fashion_mnist",
    "make_mnist",
    "GLUE_FOLDERS",
    "glue_label_values",
    "make_glue_task",
]


def class_color(c: int) -> tuple[int, int, int]:
    """A colour per class, far apart for the first few classes (survives JPEG)."""
    return ((40 + 97 * c) % 256, (200 + 59 * c) % 256, (120 + 151 * c) % 256)


def write_image(path: Path, color: tuple[int, int, int], size: int = 8) -> Path:
    """A solid ``size``² RGB image; the suffix picks the format (.jpg, .png, ...)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)
    return path


def _split_plan(per_class: int, test_per_class: int) -> list[bool]:
    """Train (True) / test (False) flags for one class, interleaved."""
    flags = [True] * per_class + [False] * test_per_class
    order = sorted(range(len(flags)), key=lambda i: (i * 7919) % max(len(flags), 1))
    return [flags[i] for i in order]


def make_imagefolder(
    root: Path,
    n_classes: int = 3,
    per_class: int = 4,
    *,
    test_per_class: int = 2,
    split_folders: bool = True,
    ext: str = ".png",
    size: int = 8,
    class_names: Sequence[str] | None = None,
) -> Path:
    """``root/{train,test}/<class>/*`` (or ``root/<class>/*`` with ``split_folders=False``)."""
    names = list(class_names) if class_names else [f"class_{c:02d}" for c in range(n_classes)]
    for c, name in enumerate(names):
        if split_folders:
            for i in range(per_class):
                write_image(root / "train" / name / f"img_{i:03d}{ext}", class_color(c), size)
            for i in range(test_per_class):
                write_image(root / "test" / name / f"img_{i:03d}{ext}", class_color(c), size)
        else:
            for i in range(per_class):
                write_image(root / name / f"img_{i:03d}{ext}", class_color(c), size)
    return root


_CUB_NAMES = [
    "Black_footed_Albatross",
    "Laysan_Albatross",
    "Sooty_Albatross",
    "Groove_billed_Ani",
    "Crested_Auklet",
    "Least_Auklet",
    "Parakeet_Auklet",
    "Rhinoceros_Auklet",
]


def _name(pool: Sequence[str], c: int) -> str:
    return pool[c] if c < len(pool) else f"{pool[c % len(pool)]}_{c}"


def make_cub200(
    root: Path, n_classes: int = 3, per_class: int = 4, *, test_per_class: int = 2, size: int = 8
) -> Path:
    """``root/CUB_200_2011`` with images.txt, image_class_labels.txt, train_test_split.txt,
    classes.txt and images/ (ids 1-based, classes ``NNN.Name``)."""
    base = root / "CUB_200_2011"
    images, labels, split, classes = [], [], [], []
    image_id = 0
    for c in range(n_classes):
        folder = f"{c + 1:03d}.{_name(_CUB_NAMES, c)}"
        classes.append(f"{c + 1} {folder}")
        for k, is_train in enumerate(_split_plan(per_class, test_per_class)):
            image_id += 1
            rel = f"{folder}/{_name(_CUB_NAMES, c)}_{k:04d}_{image_id}.jpg"
            write_image(base / "images" / rel, class_color(c), size)
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {c + 1}")
            split.append(f"{image_id} {int(is_train)}")
    for fname, lines in (
        ("images.txt", images),
        ("image_class_labels.txt", labels),
        ("train_test_split.txt", split),
        ("classes.txt", classes),
    ):
        (base / fname).write_text("\n".join(lines) + "\n")
    return base


_DOG_BREEDS = [
    "Chihuahua",
    "Japanese_spaniel",
    "Maltese_dog",
    "Shih-Tzu",
    "Pekinese",
    "Blenheim_spaniel",
    "papillon",
    "toy_terrier",
]


def make_stanford_dogs(
    root: Path,
    n_classes: int = 3,
    per_class: int = 4,
    *,
    test_per_class: int = 2,
    lists_subdir: bool = False,
    size: int = 8,
) -> Path:
    """``root/Images/<wnid>-<breed>/*.jpg`` and ``train_list.mat``/``test_list.mat``
    (``file_list``, ``annotation_list``: N×1 cells; ``labels``: N×1 doubles, 1-based)."""
    import scipy.io

    lists: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for c in range(n_classes):
        folder = f"n{2085620 + 37 * c:08d}-{_name(_DOG_BREEDS, c)}"
        wnid = folder.split("-", 1)[0]
        for k, is_train in enumerate(_split_plan(per_class, test_per_class)):
            rel = f"{folder}/{wnid}_{1000 + k}.jpg"
            write_image(root / "Images" / rel, class_color(c), size)
            lists["train" if is_train else "test"].append((rel, c + 1))
    list_dir = root / "lists" if lists_subdir else root
    list_dir.mkdir(parents=True, exist_ok=True)
    for split, entries in lists.items():
        n = len(entries)
        file_list = np.empty((n, 1), dtype=object)
        annotation_list = np.empty((n, 1), dtype=object)
        for i, (rel, _) in enumerate(entries):
            file_list[i, 0] = rel
            annotation_list[i, 0] = rel.rsplit(".", 1)[0]
        labels = np.array([[float(lab)] for _, lab in entries]).reshape(n, 1)
        scipy.io.savemat(
            str(list_dir / f"{split}_list.mat"),
            {"file_list": file_list, "annotation_list": annotation_list, "labels": labels},
        )
    return root


_CAR_NAMES = [
    "AM General Hummer SUV 2000",
    "Acura RL Sedan 2012",
    "Acura TL Sedan 2012",
    "Acura TL Type-S 2008",
    "Aston Martin V8 Vantage Convertible 2012",
    "BMW M3 Coupe 2012",
]


def _cars_annotations(entries: list[tuple[str, int]]) -> np.ndarray:
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    annos = np.zeros((1, len(entries)), dtype=[(f, "O") for f in fields])
    for i, (fname, label) in enumerate(entries):
        annos[0, i] = (
            np.array([[1]], dtype=np.uint8),
            np.array([[1]], dtype=np.uint8),
            np.array([[7]], dtype=np.uint8),
            np.array([[7]], dtype=np.uint8),
            np.array([[label]], dtype=np.uint8),
            np.array([fname]),
        )
    return annos


def make_stanford_cars(
    root: Path,
    n_classes: int = 3,
    per_class: int = 4,
    *,
    test_per_class: int = 2,
    test_annos_in_devkit: bool = False,
    size: int = 8,
) -> Path:
    """``root/stanford_cars`` in torchvision's devkit layout: cars_train/, cars_test/,
    devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_test_annos_withlabels.mat."""
    import scipy.io

    base = root / "stanford_cars"
    entries: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    counters = {"train": 0, "test": 0}
    for c in range(n_classes):
        for is_train in _split_plan(per_class, test_per_class):
            split = "train" if is_train else "test"
            counters[split] += 1
            fname = f"{counters[split]:05d}.jpg"
            write_image(base / f"cars_{split}" / fname, class_color(c), size)
            entries[split].append((fname, c + 1))
    devkit = base / "devkit"
    devkit.mkdir(parents=True, exist_ok=True)
    class_names = np.empty((1, n_classes), dtype=object)
    for c in range(n_classes):
        class_names[0, c] = _name(_CAR_NAMES, c)
    scipy.io.savemat(str(devkit / "cars_meta.mat"), {"class_names": class_names})
    scipy.io.savemat(
        str(devkit / "cars_train_annos.mat"), {"annotations": _cars_annotations(entries["train"])}
    )
    test_dir = devkit if test_annos_in_devkit else base
    scipy.io.savemat(
        str(test_dir / "cars_test_annos_withlabels.mat"),
        {"annotations": _cars_annotations(entries["test"])},
    )
    return base


# (name, species: 1 cat / 2 dog); cat breeds are capitalised in the real data
_PET_BREEDS = [
    ("Abyssinian", 1),
    ("american_bulldog", 2),
    ("Bengal", 1),
    ("american_pit_bull_terrier", 2),
    ("Birman", 1),
    ("basset_hound", 2),
    ("Bombay", 1),
    ("beagle", 2),
]


def make_oxford_pets(
    root: Path, n_classes: int = 3, per_class: int = 4, *, test_per_class: int = 2, size: int = 8
) -> Path:
    """``root/oxford-iiit-pet`` with images/ and annotations/{trainval,test,list}.txt
    (``<image> <class id> <species> <breed id>``)."""
    base = root / "oxford-iiit-pet"
    lines: dict[str, list[str]] = {"trainval": [], "test": []}
    breed_counter = {1: 0, 2: 0}
    for c in range(n_classes):
        name, species = _PET_BREEDS[c % len(_PET_BREEDS)]
        name = name if c < len(_PET_BREEDS) else f"{name}{c}"
        breed_counter[species] += 1
        for k, is_train in enumerate(_split_plan(per_class, test_per_class), start=1):
            image = f"{name}_{k}"
            write_image(base / "images" / f"{image}.jpg", class_color(c), size)
            row = f"{image} {c + 1} {species} {breed_counter[species]}"
            lines["trainval" if is_train else "test"].append(row)
    ann = base / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    for split, rows in lines.items():
        (ann / f"{split}.txt").write_text("\n".join(rows) + "\n")
    header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n"
    (ann / "list.txt").write_text(header + "\n".join(lines["trainval"] + lines["test"]) + "\n")
    return base


_VARIANTS = [
    "707-320",
    "A300B4",
    "Cessna 172",
    "F/A-18",
    "DHC-8-100",
    "Boeing 717",
    "MD-80",
    "Tu-154",
]


def make_fgvc_aircraft(
    root: Path, n_classes: int = 3, per_class: int = 4, *, test_per_class: int = 2, size: int = 8
) -> Path:
    """``root/fgvc-aircraft-2013b/data`` with variants.txt, images_variant_{train,val,
    trainval,test}.txt (``<id> <variant>``) and images/<id>.jpg. ``per_class`` counts
    train+val images (every other one is val)."""
    data = root / "fgvc-aircraft-2013b" / "data"
    variants = [_name(_VARIANTS, c) for c in range(n_classes)]
    lists: dict[str, list[str]] = {"train": [], "val": [], "trainval": [], "test": []}
    image_id = 34309
    for c, variant in enumerate(variants):
        n_tv = 0
        for is_train in _split_plan(per_class, test_per_class):
            image_id += 13
            write_image(data / "images" / f"{image_id:07d}.jpg", class_color(c), size)
            row = f"{image_id:07d} {variant}"
            if is_train:
                lists["trainval"].append(row)
                lists["train" if n_tv % 2 == 0 else "val"].append(row)
                n_tv += 1
            else:
                lists["test"].append(row)
    data.mkdir(parents=True, exist_ok=True)
    (data / "variants.txt").write_text("\n".join(variants) + "\n")
    for split, rows in lists.items():
        (data / f"images_variant_{split}.txt").write_text("\n".join(rows) + "\n")
    return root / "fgvc-aircraft-2013b"


_INDOOR = [
    "airport_inside",
    "artstudio",
    "auditorium",
    "bakery",
    "bar",
    "bathroom",
    "bedroom",
    "bookstore",
]


def make_mit_indoor67(
    root: Path, n_classes: int = 3, per_class: int = 4, *, test_per_class: int = 2, size: int = 8
) -> Path:
    """``root/Images/<category>/*.jpg`` with TrainImages.txt and TestImages.txt."""
    lists: dict[str, list[str]] = {"Train": [], "Test": []}
    for c in range(n_classes):
        category = _name(_INDOOR, c)
        for k, is_train in enumerate(_split_plan(per_class, test_per_class)):
            rel = f"{category}/{category}_{k + 1:04d}.jpg"
            write_image(root / "Images" / rel, class_color(c), size)
            lists["Train" if is_train else "Test"].append(rel)
    for split, rows in lists.items():
        (root / f"{split}Images.txt").write_text("\n".join(rows) + "\n")
    return root


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` (uint8) as IDX; gzip-compressed when ``path`` ends in ``.gz``."""
    arr = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def fake_fashion_mnist_arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, 28, 28) uint8, labels (n,) uint8)``, every class present when n >= 10."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    return images, labels


def _make_idx_set(folder: Path, n_train: int, n_test: int, gz: bool, seed: int) -> None:
    """The four MNIST-family IDX files in ``folder`` (train: ``seed``, test: ``seed + 1``)."""
    ext = ".gz" if gz else ""
    for prefix, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        images, labels = fake_fashion_mnist_arrays(n, s)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)


def make_fashion_mnist(
    root: Path,
    n_train: int = 30,
    n_test: int = 20,
    *,
    layout: str = "flat",
    gz: bool = True,
    seed: int = 0,
) -> Path:
    """Fashion-MNIST IDX files from :func:`fake_fashion_mnist_arrays` (train: ``seed``,
    test: ``seed + 1``). ``layout="flat"``: the four files in ``root`` (Debian style);
    ``"torchvision"``: under ``root/FashionMNIST/raw``."""
    _make_idx_set(
        root if layout == "flat" else root / "FashionMNIST" / "raw", n_train, n_test, gz, seed
    )
    return root


def make_mnist(
    root: Path,
    n_train: int = 30,
    n_test: int = 20,
    *,
    layout: str = "flat",
    gz: bool = True,
    seed: int = 0,
) -> Path:
    """MNIST IDX files, the same arrays as :func:`make_fashion_mnist`. ``layout``: ``"flat"``
    (the four files in ``root``), ``"raw"`` (``root/raw``) or ``"torchvision"``
    (``root/MNIST/raw``)."""
    folders = {"flat": root, "raw": root / "raw", "torchvision": root / "MNIST" / "raw"}
    _make_idx_set(folders[layout], n_train, n_test, gz, seed)
    return root


GLUE_FOLDERS = {"sst2": "SST-2", "mrpc": "MRPC", "qnli": "QNLI", "mnli": "MNLI"}

_SENTENCES = [
    "it 's a charming and often affecting journey . ",
    "unflinchingly bleak and desperate",
    'the film , "like its hero" , is "a little too long',
    'Amrozi accused his brother , whom he called " the witness " , of deliberately distorting .',
    "What came into force after the new constitution was herald?",
    "Conceptually cream skimming has two basic dimensions - product and geography.",
]
_MNLI_GENRES = ["government", "telephone", "fiction", "travel", "slate"]


_GLUE_LABELS = {
    "sst2": ["0", "1"],
    "mrpc": ["0", "1"],
    "qnli": ["entailment", "not_entailment"],
    "mnli": ["contradiction", "entailment", "neutral"],
}
_MNLI_COLUMNS = [
    "index",
    "promptID",
    "pairID",
    "genre",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
]


def _glue_header(task: str, kind: str) -> list[str]:
    """GLUE's columns for ``kind`` in train / dev / test (test: no label column)."""
    if task == "sst2":
        return ["sentence", "label"] if kind != "test" else ["index", "sentence"]
    if task == "mrpc":
        first = "Quality" if kind != "test" else "index"
        return [first, "#1 ID", "#2 ID", "#1 String", "#2 String"]
    if task == "qnli":
        return ["index", "question", "sentence"] + (["label"] if kind != "test" else [])
    extra = {"train": ["label1", "gold_label"], "test": []}
    return _MNLI_COLUMNS + extra.get(
        kind, ["label1", "label2", "label3", "label4", "label5", "gold_label"]
    )


def _glue_row(task: str, kind: str, i: int, offset: int) -> list[str]:
    a = _SENTENCES[(i + offset) % len(_SENTENCES)]
    b = _SENTENCES[(i + offset + 3) % len(_SENTENCES)]
    labels = _GLUE_LABELS[task]
    label = labels[i % len(labels)]
    if task == "sst2":
        return [a, label] if kind != "test" else [str(i), a]
    if task == "mrpc":
        return [label if kind != "test" else str(i), str(1000 + 2 * i), str(1001 + 2 * i), a, b]
    if task == "qnli":
        return [str(i), a, b] + ([label] if kind != "test" else [])
    parse = "( ( x ) y )"
    row = [
        str(i),
        str(31193 + i),
        f"{31193 + i}{label[0]}",
        _MNLI_GENRES[i % 5],
        parse,
        parse,
        "(ROOT (S x))",
        "(ROOT (S y))",
        a,
        b,
    ]
    n_labels = {"train": 2, "test": 0}.get(kind, 6)
    return row + [label] * n_labels


def glue_label_values(task: str) -> list[str]:
    """The raw label values of ``task``; row ``i`` of every labelled file has value ``i % len``."""
    return list(_GLUE_LABELS[task])


def make_glue_task(root: Path, task: str, n: int = 8, *, n_dev: int | None = None) -> Path:
    """``root/<GLUE folder>`` with train.tsv (``n`` rows), the dev file(s) (``n_dev`` rows,
    default ``max(n // 2, 3)``) and the unlabelled test file(s), in GLUE's columns.

    Row ``i`` of a labelled file has label value ``glue_label_values(task)[i % k]``.
    MRPC's header starts with a UTF-8 BOM, as the Microsoft files it is copied from do;
    sentences contain unbalanced double quotes, as the real data does.
    """
    folder = root / GLUE_FOLDERS[task]
    folder.mkdir(parents=True, exist_ok=True)
    n_dev = max(n // 2, 3) if n_dev is None else n_dev
    if task == "mnli":
        files = {
            "train.tsv": ("train", n),
            "dev_matched.tsv": ("dev", n_dev),
            "dev_mismatched.tsv": ("dev", n_dev),
            "test_matched.tsv": ("test", n_dev),
            "test_mismatched.tsv": ("test", n_dev),
        }
    else:
        files = {"train.tsv": ("train", n), "dev.tsv": ("dev", n_dev), "test.tsv": ("test", n_dev)}
    for offset, (fname, (kind, rows_n)) in enumerate(files.items()):
        bom = "\ufeff" if task == "mrpc" and kind != "test" else ""
        lines = [_glue_header(task, kind)] + [
            _glue_row(task, kind, i, offset) for i in range(rows_n)
        ]
        text = bom + "".join("\t".join(r) + "\n" for r in lines)
        (folder / fname).write_text(text, encoding="utf-8")
    return folder
