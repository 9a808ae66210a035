"""Build a real, offline text-classification task in GLUE's SST-2 layout from Debian's fortunes.

The Debian package ``fortunes`` (BSD fortune's data files, version 1:1.99.1-7.3 here) ships
its quotations sorted by curators into topic files. Two topics become the two classes:
``computers`` (label 0) and ``science`` (label 1). Each quotation is one row, its whitespace
collapsed to single spaces (so tabs and line breaks vanish); quotations under 4 words and
texts found in both files are dropped. With a fixed seed, ``--train`` quotations per class
go to ``train.tsv`` and ``--dev`` others per class to ``dev.tsv`` (header ``sentence<TAB>label``,
no quoting: what ``glue-sst2:DIR`` reads).

    apt-get download fortunes && dpkg -x fortunes_*.deb /tmp/fortunes      # or apt-get install fortunes
    python scripts/fortunes_sst2.py /tmp/fortunes/usr/share/games/fortunes /tmp/fortunes-sst2/SST-2

It prints the SHA-256 of both files: docs/select-layers.md quotes the ones its runs used.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
from pathlib import Path

CLASSES = ("computers", "science")


def read_topic(path: Path) -> list[str]:
    """The quotations of one fortune file (``%`` lines separate them), whitespace collapsed."""
    text = path.read_text(encoding="utf-8", errors="replace")
    quotes = (re.sub(r"\s+", " ", q).strip() for q in re.split(r"^%$", text, flags=re.M))
    return [q for q in quotes if len(q.split()) >= 4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fortunes", type=Path, help="folder of the fortune files")
    parser.add_argument("out", type=Path, help="folder to write train.tsv and dev.tsv into")
    parser.add_argument("--train", type=int, default=200, help="training quotations per class")
    parser.add_argument("--dev", type=int, default=400, help="dev quotations per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    topics = {name: read_topic(args.fortunes / name) for name in CLASSES}
    shared = set(topics[CLASSES[0]]) & set(topics[CLASSES[1]])
    rng = random.Random(args.seed)
    train: list[tuple[str, int]] = []
    dev: list[tuple[str, int]] = []
    for label, name in enumerate(CLASSES):
        quotes = sorted(set(topics[name]) - shared)
        rng.shuffle(quotes)
        if len(quotes) < args.train + args.dev:
            raise SystemExit(
                f"expected at least {args.train + args.dev} quotations in {name}, found {len(quotes)}"
            )
        train += [(q, label) for q in quotes[: args.train]]
        dev += [(q, label) for q in quotes[args.train : args.train + args.dev]]
    rng.shuffle(train)
    args.out.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("dev", dev)):
        path = args.out / f"{split}.tsv"
        path.write_text(
            "sentence\tlabel\n" + "".join(f"{q}\t{y}\n" for q, y in rows), encoding="utf-8"
        )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path}: {len(rows)} rows, sha256 {digest}")


if __name__ == "__main__":
    main()
