r"""``compare_features``: how similar two models' representations are, layer by layer.

Both models see the same samples in the same batches (each with its own preprocessing).
Hooks read the output of every chosen module (pooled to one vector per sample, as in
:func:`~spectral_probe.analysis.feature_spectrum`), and every (layer of A, layer of B) pair
gets a value per metric:

* linear CKA, plain and debiased, over **every** sample, streamed with
  :class:`~spectral_probe.similarity.StreamingCKA` (memory flat in :math:`N`);
* RBF CKA, SVCCA, PWCCA and the Procrustes distance on the **first** ``sample`` samples of
  the seeded batch order (default 2048): they need the rows themselves (RBF CKA an
  :math:`N \times N` kernel per layer).

The *matched* pairs (same module name, or the i-th layer of each list) are the diagonal: the
representation-space twin of the per-layer angles of ``compare-weights``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from .._results import TidyResult, records, write_result_json, write_tables_csv
from ..errors import ConfigError
from ..extract.features import PENULTIMATE
from ..extract.reader import FeatureReader, ModelLike
from ..models import LoadedModel, load_model
from ..similarity import METRICS, StreamingCKA, get_metric, pairwise

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FeatureSimilarity",
    "compare_features",
    "select_layers",
    "default_layers",
    "DEFAULT_SAMPLE",
]

#: Rows kept for the metrics that are not streamed (RBF CKA, SVCCA, PWCCA, Procrustes).
DEFAULT_SAMPLE = 2048
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class FeatureSimilarity(TidyResult):
    """Result of :func:`compare_features`.

    Attributes:
        pairs: tidy, one row per (metric, layer of A, layer of B): ``metric``, ``layer_a``,
            ``layer_b``, ``depth_a``, ``depth_b`` (0-based positions), ``value``, ``n``
            (samples it was computed on), ``matched``.
        matched: the diagonal, one row per matched pair: ``depth``, ``layer_a``,
            ``layer_b``, ``d_a``, ``d_b`` and one column per metric.
        layers: one row per (model, layer): ``model`` (``a``/``b``), ``label``, ``layer``,
            ``depth``, ``site``, ``d``.
        meta: data, sampling, timings and the options used.
    """

    pairs: pd.DataFrame
    matched: pd.DataFrame
    layers: pd.DataFrame
    meta: dict[str, Any]

    main_table: ClassVar[str] = "matched"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``matched``, ``pairs`` and ``layers``."""
        return {"matched": self.matched, "pairs": self.pairs, "layers": self.layers}

    @property
    def metrics(self) -> list[str]:
        """The metrics computed, in the order asked."""
        return list(dict.fromkeys(self.pairs["metric"]))

    def matrix(self, metric: str) -> pd.DataFrame:
        """The layer x layer values of ``metric`` (rows: A's layers, columns: B's)."""
        if metric not in self.metrics:
            raise ConfigError(f"expected a metric in {self.metrics}, found {metric!r}")
        df = self.pairs[self.pairs["metric"] == metric]
        table = df.pivot(index="layer_a", columns="layer_b", values="value")
        order_a = list(dict.fromkeys(df.sort_values("depth_a")["layer_a"]))
        order_b = list(dict.fromkeys(df.sort_values("depth_b")["layer_b"]))
        return table.loc[order_a, order_b]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content."""
        return {
            "meta": self.meta,
            "matched": records(self.matched),
            "pairs": records(self.pairs),
            "layers": records(self.layers),
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as strict JSON, atomically."""
        return write_result_json(path, self.to_dict())

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``matched.csv``, ``pairs.csv`` and ``layers.csv`` into ``directory``."""
        return write_tables_csv(directory, self.tables())


def default_layers(model: nn.Module) -> list[str]:
    """The stage outputs of a network, then ``penultimate``.

    A stage is a module whose name ends in a number under a parent whose name does not:
    ``blocks.0`` ... ``blocks.6`` of EfficientNet-Lite, ``layer1.0`` ... of a ResNet,
    ``encoder.layer.0`` ... of BERT.
    """
    names = [n for n, _ in model.named_modules() if n]
    out = []
    for name in names:
        parts = name.split(".")
        if len(parts) >= 2 and parts[-1].isdigit() and not parts[-2].isdigit():
            out.append(name)
    return [*out, PENULTIMATE]


def select_layers(model: nn.Module, regex: str | None, *, what: str = "the model") -> list[str]:
    """Module names (and ``penultimate``) matching ``regex`` (``re.search``), in module order.

    ``None`` gives :func:`default_layers`.

    Raises:
        ConfigError: an invalid regex, or one that matches nothing.
    """
    if regex is None:
        return default_layers(model)
    try:
        pattern = re.compile(regex)
    except re.error as err:
        raise ConfigError(
            f"expected a regular expression for --layers, found {regex!r} ({err})"
        ) from None
    names = [n for n, _ in model.named_modules() if n] + [PENULTIMATE]
    chosen = [n for n in names if pattern.search(n)]
    if not chosen:
        raise ConfigError(
            f"expected --layers {regex!r} to match modules of {what}, found none "
            "(list them with `spectral-probe layers MODEL --modules`)"
        )
    return chosen


def _module(model: LoadedModel | nn.Module) -> nn.Module:
    return model.model if isinstance(model, LoadedModel) else model


def _matched(layers_a: list[str], layers_b: list[str]) -> list[tuple[int, int]]:
    """Matched pairs: by name when B's layers are A's names; else by position (equal counts),
    else the names both lists share."""
    if layers_a == layers_b or len(layers_a) != len(layers_b):
        index_b = {n: j for j, n in enumerate(layers_b)}
        return [(i, index_b[n]) for i, n in enumerate(layers_a) if n in index_b]
    return [(i, i) for i in range(len(layers_a))]


def _check_metrics(metrics: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(metrics))
    if not names:
        raise ConfigError(f"expected at least one metric in {list(METRICS)}, found none")
    for name in names:
        get_metric(name)
    return names


@dataclass
class _Read:
    """What one pass over the data leaves: the streamed CKA, the kept rows, the layers read."""

    names_a: list[str]
    names_b: list[str]
    acc: StreamingCKA
    kept: tuple[list[torch.Tensor], list[torch.Tensor]]
    n_kept: int
    sites: dict[str, dict[str, str]]
    sizes: tuple[int | None, int | None]


def _read_both(
    reader: FeatureReader,
    a: LoadedModel | nn.Module,
    b: LoadedModel | nn.Module,
    names: tuple[list[str], list[str]],
    *,
    sample: int,
    keep_rows: bool,
    progress: Progress | None,
) -> _Read:
    """Stream both models over the same batches: linear CKA over every sample, the first
    ``sample`` rows kept (when a metric needs them)."""
    names_a, names_b = names
    with (
        reader.open(a, names_a, name="model A", check_finite=True) as stream_a,
        reader.open(b, names_b, name="model B", check_finite=True) as stream_b,
    ):
        total = len(stream_a)
        acc = StreamingCKA(names_a, names_b)
        chunks: tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]] = (
            [[] for _ in names_a],
            [[] for _ in names_b],
        )
        n_kept = 0
        for done, (fa, fb) in enumerate(zip(stream_a, stream_b), start=1):
            xs, ys = [fa[n] for n in names_a], [fb[n] for n in names_b]
            acc.update(xs, ys)
            if keep_rows and n_kept < sample:
                take = min(sample - n_kept, reader.batch_size)
                for store, mats in zip(chunks, (xs, ys)):
                    for rows, m in zip(store, mats):
                        rows.append(m[:take].cpu())
                n_kept += take
            if progress is not None:
                progress(done, total, f"{done * reader.batch_size} samples")
        sites = {
            "a": {s.name: s.description for s in stream_a.sites},
            "b": {s.name: s.description for s in stream_b.sites},
        }
        sizes = (stream_a.image_size, stream_b.image_size)
    kept = (
        [torch.cat(c) for c in chunks[0]] if n_kept else [],
        [torch.cat(c) for c in chunks[1]] if n_kept else [],
    )
    return _Read(names_a, names_b, acc, kept, n_kept, sites, sizes)


def _values(
    read: _Read, names: list[str], rbf_sigma: float, svcca_keep: float
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Each metric's layer x layer matrix, and the samples it was computed on."""
    values: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    for name in names:
        if METRICS[name].streaming:
            values[name] = read.acc.cka(debiased=name == "debiased-cka")
            counts[name] = read.acc.n
        else:
            opts: dict[str, Any] = {
                "rbf-cka": {"sigma": rbf_sigma},
                "svcca": {"keep": svcca_keep},
            }.get(name, {})
            xs, ys = read.kept
            values[name] = pairwise(
                name, xs, ys, names_x=read.names_a, names_y=read.names_b, **opts
            )
            counts[name] = read.n_kept
    return values, counts


def _tables(
    read: _Read,
    names: list[str],
    values: dict[str, torch.Tensor],
    counts: dict[str, int],
    labels: tuple[str, str],
) -> dict[str, pd.DataFrame]:
    """The ``pairs``, ``matched`` and ``layers`` tables of a :class:`FeatureSimilarity`."""
    import pandas as pd

    names_a, names_b = read.names_a, read.names_b
    widths = read.acc.widths or ([], [])
    matched = _matched(names_a, names_b)
    matched_set = set(matched)
    pair_rows = [
        {
            "metric": name,
            "layer_a": la,
            "layer_b": lb,
            "depth_a": i,
            "depth_b": j,
            "value": float(values[name][i, j]),
            "n": counts[name],
            "matched": (i, j) in matched_set,
        }
        for name in names
        for i, la in enumerate(names_a)
        for j, lb in enumerate(names_b)
    ]
    diag_rows = []
    for depth, (i, j) in enumerate(matched):
        row: dict[str, Any] = {
            "depth": depth,
            "layer_a": names_a[i],
            "layer_b": names_b[j],
            "d_a": widths[0][i],
            "d_b": widths[1][j],
        }
        row.update({name: float(values[name][i, j]) for name in names})
        diag_rows.append(row)
    layer_rows = [
        {
            "model": key,
            "label": str(lab),
            "layer": layer,
            "depth": k,
            "site": read.sites[key][layer],
            "d": d,
        }
        for key, lab, lst, ws in (
            ("a", labels[0], names_a, widths[0]),
            ("b", labels[1], names_b, widths[1]),
        )
        for k, (layer, d) in enumerate(zip(lst, ws))
    ]
    pair_cols = ["metric", "layer_a", "layer_b", "depth_a", "depth_b", "value", "n", "matched"]
    return {
        "pairs": pd.DataFrame(pair_rows, columns=pair_cols),
        "matched": pd.DataFrame(
            diag_rows, columns=["depth", "layer_a", "layer_b", "d_a", "d_b", *names]
        ),
        "layers": pd.DataFrame(
            layer_rows, columns=["model", "label", "layer", "depth", "site", "d"]
        ),
    }


def compare_features(
    model_a: ModelLike,
    model_b: ModelLike,
    data: FeatureReader | Any,
    *,
    layers: str | None = None,
    layers_b: str | None = None,
    metrics: Sequence[str] = ("cka", "debiased-cka"),
    sample: int = DEFAULT_SAMPLE,
    rbf_sigma: float = 0.8,
    svcca_keep: float = 0.99,
    labels: tuple[str, str] | None = None,
    arch_a: str | None = None,
    arch_b: str | None = None,
    progress: Progress | None = None,
    **reading: Any,
) -> FeatureSimilarity:
    """Similarity of two models' representations for every pair of chosen layers.

    Args:
        model_a: the reference (pre-trained) model: spec, checkpoint path, LoadedModel or module.
        model_b: the compared (fine-tuned) model.
        data: a :class:`~spectral_probe.extract.FeatureReader` (which samples, batches,
            preprocessing, pooling, device), or a data spec (``fashion-mnist``,
            ``digits``...) or dataset read with ``split="test"`` and ``batch_size=64`` unless
            given in ``reading``.
        layers: regex over A's module names (``re.search``; ``penultimate`` counts as a name);
            default: the stage outputs and the penultimate features (:func:`default_layers`).
        layers_b: regex for B; default: A's layer names.
        metrics: names from :data:`~spectral_probe.similarity.METRICS`.
        sample: rows kept for the non-streamed metrics (the first ones in the seeded order).
        rbf_sigma: bandwidth of ``rbf-cka`` relative to the median distance.
        svcca_keep: variance share (or count) ``svcca`` keeps.
        labels: names of the two models in the results (default: their specs).
        arch_a: architecture spec of a state-dict file without a sidecar for model A.
        arch_b: the same for model B.
        progress: called as ``progress(done, total, item)`` after each batch.
        **reading: :class:`~spectral_probe.extract.FeatureReader` settings (``batch_size``,
            ``max_batches``, ``image_size``, ``device``...), replacing the reader's.

    Raises:
        ConfigError: unknown metric, bad regex or layer, batch size below 2.
        DataError: bad data spec, or fewer samples than one batch.
        NonFiniteFeaturesError: NaN or Inf features (the message names the model, layer, batch).
        DegenerateFeaturesError: a layer whose features are constant over the samples.
    """
    reader = FeatureReader.of(data, {"split": "test", "batch_size": 64}, **reading)
    names = _check_metrics(metrics)
    if reader.batch_size < 2:
        raise ConfigError(f"expected a batch size of at least 2, found {reader.batch_size!r}")
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 4:
        raise ConfigError(
            f"expected a sample of at least 4 rows for the non-streamed metrics, found {sample!r}"
        )
    a = load_model(model_a, arch=arch_a) if isinstance(model_a, str) else model_a
    b = load_model(model_b, arch=arch_b) if isinstance(model_b, str) else model_b
    label_a, label_b = labels or (
        model_a if isinstance(model_a, str) else getattr(model_a, "spec", "A"),
        model_b if isinstance(model_b, str) else getattr(model_b, "spec", "B"),
    )
    started = time.perf_counter()
    names_a = select_layers(_module(a), layers, what=str(label_a))
    names_b = (
        names_a if layers_b is None else select_layers(_module(b), layers_b, what=str(label_b))
    )
    keep_rows = any(not METRICS[n].streaming for n in names)
    read = _read_both(
        reader, a, b, (names_a, names_b), sample=sample, keep_rows=keep_rows, progress=progress
    )
    values, counts = _values(read, names, rbf_sigma, svcca_keep)
    tables = _tables(read, names, values, counts, (str(label_a), str(label_b)))
    from .. import __version__

    meta = {
        "model_a": str(label_a),
        "model_b": str(label_b),
        "data": reader.data_name,
        "split": reader.split_read,
        "n_samples": read.acc.n,
        "sample": read.n_kept if keep_rows else None,
        "sample_cap": sample,
        "batch_size": reader.batch_size,
        "max_batches": reader.max_batches,
        "seed": reader.seed,
        "metrics": names,
        "layers": layers,
        "layers_b": layers_b,
        "pool": reader.pool,
        "rbf_sigma": rbf_sigma,
        "svcca_keep": svcca_keep,
        "image_size": {"a": read.sizes[0], "b": read.sizes[1]},
        "interpolation": reader.interpolation,
        "device": str(reader.torch_device),
        "seconds": time.perf_counter() - started,
        "versions": {"spectral_probe": __version__, "torch": str(torch.__version__)},
    }
    return FeatureSimilarity(meta=meta, **tables)
