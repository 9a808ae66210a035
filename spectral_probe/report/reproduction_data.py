"""The per-run numbers behind the reproduction page, measured once from run directories and
shipped as a small JSON file (``docs/reproduction/data/*.json``) from which the page is
regenerated in seconds.

:func:`export_reproduction_data` does the measuring (the slow part: feature spectra of every
L2 and L2+BSS checkpoint on the test split, weight comparisons of the Figure 1(b) runs
against their pre-trained start, test errors and training losses from the run files);
:class:`ReproductionData` holds the three tidy tables it produces and reads and writes them.
Nothing else is needed to decide a verdict: :func:`~spectral_probe.report.reproduction.
reproduction_from_data` computes every finding from these tables alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._io import atomic_write_text, to_jsonable
from ..errors import ConfigError
from .reproduction_numbers import LAYER_COLUMNS, top_rest

if TYPE_CHECKING:
    from ..analysis import WeightComparison

__all__ = [
    "FORMAT",
    "RUN_COLUMNS",
    "ReproductionData",
    "depth_groups",
    "export_reproduction_data",
    "layer_contrast",
    "select_runs",
]

#: The ``format`` field of the data file.
FORMAT = "spectral-probe-reproduction-data"
VERSION = 1

#: One row per finished run: identity, cell, test error (%), length of training, losses,
#: and the two feature statistics of Figures 1(c, d) and 3(c) (NaN where not measured).
RUN_COLUMNS = (
    "run_id",
    "model",
    "data",
    "dataset",
    "method",
    "rate",
    "rate_percent",
    "seed",
    "k",
    "r",
    "error",
    "test_n",
    "train_size",
    "image_size",
    "batch_size",
    "iterations",
    "epochs",
    "train_seconds",
    "loss_last_tenth",
    "loss_tenth_before",
    "q_all",
    "q_tail",
)
SPECTRUM_COLUMNS = ("run_id", "index", "sigma_norm")
_INT = {"seed", "k", "r", "test_n", "train_size", "image_size", "batch_size", "iterations",
        "index", "depth", "rank"}  # fmt: skip
_TEXT = {"run_id", "model", "data", "dataset", "method", "rate", "layer", "group"}

Stage = Callable[[str], None]


def _round(x: Any, digits: int = 8) -> Any:
    """Floats to ``digits`` significant digits (NaN stays NaN): stable, diff-friendly files."""
    if isinstance(x, float) and math.isfinite(x) and x != 0.0:
        return float(f"{x:.{digits}g}")
    return x


@dataclass(frozen=True)
class ReproductionData:
    """The per-run numbers the reproduction page is computed from.

    Attributes:
        meta: where and how they were measured: ``runs_dir``, ``figure1_data``,
            ``figure3_data``, ``max_batches`` (test batches per checkpoint), ``settings``
            (models, rates, seeds, iterations, epochs... of the runs).
        runs: one row per run, columns :data:`RUN_COLUMNS`.
        spectrum: per run and index ``i``, the mean over test batches of sigma_i / sigma_1
            of the penultimate feature matrix (``run_id``, ``index``, ``sigma_norm``).
        layers: Figure 1(b)'s per-layer angle statistics of each compared run
            (:data:`~spectral_probe.report.reproduction_numbers.LAYER_COLUMNS`).
    """

    meta: dict[str, Any] = field(default_factory=dict)
    runs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(RUN_COLUMNS)))
    spectrum: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(SPECTRUM_COLUMNS))
    )
    layers: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(LAYER_COLUMNS)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: the tables as ``{"columns": [...], "rows": [[...], ...]}`` (floats to 8 digits)."""

        def table(df: pd.DataFrame, columns: Sequence[str]) -> dict[str, Any]:
            rows = [[_round(v) for v in row] for row in df[list(columns)].itertuples(index=False)]
            return {"columns": list(columns), "rows": to_jsonable(rows)}

        return {
            "format": FORMAT,
            "version": VERSION,
            "meta": to_jsonable(self.meta),
            "runs": table(self.runs, RUN_COLUMNS),
            "spectrum": table(self.spectrum, SPECTRUM_COLUMNS),
            "layers": table(self.layers, LAYER_COLUMNS),
        }

    def write(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` atomically, one table row per line."""
        d = self.to_dict()
        parts = [
            "{",
            f'  "format": {json.dumps(d["format"])},',
            f'  "version": {d["version"]},',
            f'  "meta": {json.dumps(d["meta"], sort_keys=True, allow_nan=False)},',
        ]
        names = ("runs", "spectrum", "layers")
        for i, name in enumerate(names):
            t = d[name]
            rows = ",\n".join("      " + json.dumps(r, allow_nan=False) for r in t["rows"])
            parts += [
                f'  "{name}": {{',
                f'    "columns": {json.dumps(t["columns"])},',
                '    "rows": [' + ("\n" + rows + "\n    " if rows else "") + "]",
                "  }" + ("," if i < len(names) - 1 else ""),
            ]
        parts.append("}")
        return atomic_write_text(path, "\n".join(parts) + "\n")

    @classmethod
    def from_dict(cls, d: Any, source: str = "the data") -> ReproductionData:
        """The inverse of :meth:`to_dict`.

        Raises:
            ConfigError: not a reproduction data file, or a table lacks its columns.
        """
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ConfigError(f"expected {source} to have format {FORMAT!r}, found {found!r}")
        if d.get("version") != VERSION:
            raise ConfigError(
                f"expected {source} to be version {VERSION}, found {d.get('version')!r}"
            )
        tables = {}
        for name, columns in (
            ("runs", RUN_COLUMNS),
            ("spectrum", SPECTRUM_COLUMNS),
            ("layers", LAYER_COLUMNS),
        ):
            t = d.get(name)
            if not isinstance(t, dict) or list(t.get("columns", [])) != list(columns):
                got = t.get("columns") if isinstance(t, dict) else t
                raise ConfigError(
                    f"expected the {name!r} table of {source} to have columns {list(columns)}, found {got!r}"
                )
            df = pd.DataFrame(t.get("rows", []), columns=list(columns))
            for col in columns:
                if col not in _TEXT:  # numbers, with null as NaN; whole numbers stay int
                    x = pd.to_numeric(df[col], errors="coerce").astype(float)
                    whole = x.notna().all() and bool((x == x.round()).all()) and col in _INT
                    df[col] = x.astype(int) if whole else x
            tables[name] = df
        return cls(meta=dict(d.get("meta") or {}), **tables)

    @classmethod
    def read(cls, path: str | Path) -> ReproductionData:
        """Read a file written by :meth:`write`.

        Raises:
            ConfigError: the file is missing, not JSON, or not a reproduction data file.
        """
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"expected a reproduction data file (JSON), found nothing at {p}")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"expected JSON in {p}, found invalid text ({err})") from None
        return cls.from_dict(d, str(p))


# ---------------------------------------------------------------- measuring


def select_runs(root: str | Path) -> pd.DataFrame:
    """The finished image-classification runs under ``root``, one row each.

    Columns: ``run_id``, ``path``, ``model``, ``data``, ``dataset``, ``method``, ``rate``,
    ``rate_percent``, ``seed``, ``k`` (BSS's k, 0 without BSS), ``r`` (TSVD's r, 0 without),
    ``error`` (test top-1 error, %), ``image_size``, ``batch_size``, ``train_seconds``.
    Empty (with these columns) when ``root`` holds none or does not exist.
    """
    from ..training.aggregate import collect_runs

    columns = [
        "run_id",
        "path",
        "model",
        "data",
        "dataset",
        "method",
        "rate",
        "rate_percent",
        "seed",
        "k",
        "r",
        "error",
        "image_size",
        "batch_size",
        "train_seconds",
    ]
    if not Path(root).is_dir():
        return pd.DataFrame(columns=columns)
    runs = collect_runs(root)
    if runs.empty:
        return pd.DataFrame(columns=columns)
    runs = runs[
        (runs["status"] == "finished")
        & (runs.get("task", "image-classification") == "image-classification")
    ]
    runs = runs.copy()
    runs["k"] = runs["hp.bss.k"].fillna(0).astype(int) if "hp.bss.k" in runs else 0
    runs["r"] = runs["hp.tsvd.r"].fillna(0).astype(int) if "hp.tsvd.r" in runs else 0
    runs.loc[~runs["method"].str.contains("bss"), "k"] = 0
    runs.loc[~runs["method"].str.contains("tsvd"), "r"] = 0
    runs["error"] = 100.0 - runs["test_accuracy"]
    for col in columns:
        if col not in runs:
            runs[col] = None
    return (
        runs[columns]
        .sort_values(["dataset", "method", "rate_percent", "k", "r", "seed"])
        .reset_index(drop=True)
    )


def _run_files(path: str) -> dict[str, Any]:
    """Length of training, training losses and test size from a run's files."""
    from ..training.rundir import RunDir

    rd = RunDir(path)
    recs = [x for x in rd.read_metrics() if "loss_task" in x]
    out: dict[str, Any] = dict.fromkeys(
        ("iterations", "epochs", "loss_last_tenth", "loss_tenth_before", "test_n", "train_size")
    )
    if recs:
        out["iterations"] = recs[-1].get("iteration")
        out["epochs"] = recs[-1].get("epoch")
    n = max(1, len(recs) // 10)  # a tenth of the logged lines, at least the last one
    if recs:
        out["loss_last_tenth"] = sum(float(x["loss_task"]) for x in recs[-n:]) / n
    if len(recs) >= 2 * n:
        out["loss_tenth_before"] = sum(float(x["loss_task"]) for x in recs[-2 * n : -n]) / n
    final = json.loads((Path(path) / "final.json").read_text(encoding="utf-8"))
    out["test_n"] = ((final.get("evals") or {}).get("test") or {}).get("n")
    config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    out["train_size"] = (config.get("data") or {}).get("train_size")
    return out


def layer_contrast(
    result: WeightComparison, lower: Sequence[str], higher: Sequence[str]
) -> pd.DataFrame:
    """Per compared layer: ``top``/``rest`` of the index, stable and window views and the depth group.

    Columns: ``layer``, ``depth`` (0-based order), ``group`` (``lower``, ``higher`` or ``""``),
    ``rank``, ``top_index``, ``rest_index``, ``top_stable``, ``rest_stable``, ``top_window``,
    ``rest_window``, ``stable_share`` (share of indices with a Wedin bound below 1).
    """
    rows = []
    for depth, (name, group) in enumerate(result.angles.groupby("layer", sort=False)):
        g = group.sort_values("index")
        cos = g["cos"].to_numpy()
        stable = g["resolvable"].to_numpy(dtype=bool)
        ti, ri = top_rest(cos)
        ts, rs = top_rest(cos, stable)
        tw, rw = top_rest(g["cos_window"].to_numpy())
        depth_group = "lower" if name in lower else "higher" if name in higher else ""
        rows.append(
            {
                "layer": name,
                "depth": depth,
                "group": depth_group,
                "rank": len(g),
                "top_index": ti,
                "rest_index": ri,
                "top_stable": ts,
                "rest_stable": rs,
                "top_window": tw,
                "rest_window": rw,
                "stable_share": float(stable.mean()) if stable.size else math.nan,
            }
        )
    return pd.DataFrame(rows)


def depth_groups(result: WeightComparison) -> tuple[list[str], list[str]]:
    """The paper's lower layers (first conv, first block) and higher layers (last block).

    A model without numbered blocks: the first and the last third of the compared layers.
    """
    from ..plotting.weights import block_of, default_plot_layers

    chosen = default_plot_layers(result.layers["layer"], result.layers["kind"])
    blocks = [block_of(n) for n in chosen]
    last = blocks[-1] if blocks else ""
    higher = [n for n, b in zip(chosen, blocks) if b == last and b != n]
    lower = [n for n in chosen if n not in higher]
    if not higher:
        names = list(result.layers["layer"])
        third = max(1, len(names) // 3)
        lower, higher = names[:third], names[-third:] if len(names) > 1 else []
    return lower, higher


def _pick_dataset(runs: pd.DataFrame, prefer: str, methods: tuple[str, ...]) -> str | None:
    """``prefer`` if it has runs of ``methods``, else the dataset with the most such runs."""
    have = runs[runs["method"].isin(methods)]
    if have.empty:
        return None
    if prefer in set(have["dataset"]):
        return prefer
    return str(have["dataset"].value_counts().index[0])


def _settings(runs: pd.DataFrame) -> dict[str, Any]:
    """What the runs were: models, datasets, methods, rates, seeds, length, image sizes."""
    if runs.empty:
        return {}

    def values(col: str) -> list[Any]:
        found = {v for v in runs[col].tolist() if v is not None and v == v}
        numeric = all(isinstance(v, (int, float)) for v in found)
        return sorted(found, key=float if numeric else str)

    rates = runs.drop_duplicates("rate").sort_values("rate_percent")["rate"].tolist()
    return {
        "models": values("model"),
        "datasets": values("dataset"),
        "methods": values("method"),
        "rates": rates,
        "seeds": values("seed"),
        "iterations": values("iterations"),
        "epochs": values("epochs"),
        "image_sizes": values("image_size"),
        "batch_sizes": values("batch_size"),
        "train_hours": round(float(pd.to_numeric(runs["train_seconds"]).fillna(0).sum()) / 3600, 3),
    }


def export_reproduction_data(
    root: str | Path,
    *,
    max_batches: int = 10,
    device: str = "cpu",
    figure1_data: str = "mit-indoor67",
    figure3_data: str = "stanford-dogs",
    stage: Stage | None = None,
) -> ReproductionData:
    """Measure the per-run numbers of every figure from the finished runs under ``root``.

    Figures 1(b-d) use the L2 runs of ``figure1_data`` (the paper's MIT Indoor 67; else the
    dataset with the most L2 runs), Figures 3(a-d) the runs of ``figure3_data`` (the paper's
    Stanford Dogs; else the dataset with the most L2+BSS runs).

    Args:
        root: folder of run directories (any depth); it may be missing (empty tables).
        max_batches: test batches per checkpoint in the feature spectra (rows: the runs' batch size).
        device: where checkpoints are evaluated and weights decomposed.
        figure1_data: the dataset name preferred for Figure 1.
        figure3_data: the dataset name preferred for Figure 3.
        stage: called with a line before each long step.
    """
    from .reproduction_spectra import mean_spectrum, run_spectrum_stats

    say = stage or (lambda text: None)
    selected = select_runs(root)
    d1 = _pick_dataset(selected, figure1_data, ("l2",))
    d3 = _pick_dataset(selected, figure3_data, ("l2+bss", "l2+tsvd"))
    runs = selected[selected["dataset"].isin([d for d in (d1, d3) if d])].copy()
    extra_cols = ["iterations", "epochs", "loss_last_tenth", "loss_tenth_before", "test_n",
                  "train_size"]  # fmt: skip
    extra = pd.DataFrame(
        [_run_files(str(p)) for p in runs["path"]], index=runs.index, columns=extra_cols
    )
    for col in extra_cols:
        runs[col] = extra[col]
    # feature spectra: the L2 runs and the L2+BSS runs with k = 1
    measured = runs[(runs["method"] == "l2") | ((runs["method"] == "l2+bss") & (runs["k"] == 1))]
    stats = pd.DataFrame(columns=["model", "q_all", "q_tail"])
    spectrum = pd.DataFrame(columns=list(SPECTRUM_COLUMNS))
    if not measured.empty:
        from ..analysis import feature_spectrum
        from ..extract import FeatureReader

        say(f"feature spectra of {len(measured)} checkpoints on the test split")
        batches, parts = [], []
        for data, group in measured.groupby("data", sort=True):
            models = {
                row.run_id: str(Path(row.path) / "model.safetensors") for row in group.itertuples()
            }
            reader = FeatureReader(
                str(data),
                split="test",
                batch_size=int(group["batch_size"].iloc[0]),
                max_batches=max_batches,
                image_size=int(group["image_size"].iloc[0]),
                device=device,
            )
            fs = feature_spectrum(models, reader, dataset_spectrum=False)
            batches.append(fs.batches)
        allb = pd.concat(batches, ignore_index=True)
        stats = run_spectrum_stats(allb)
        parts.append(mean_spectrum(allb))
        spectrum = pd.concat(parts, ignore_index=True)
    q = stats.set_index("model")
    runs["q_all"] = runs["run_id"].map(q["q_all"]) if not q.empty else math.nan
    runs["q_tail"] = runs["run_id"].map(q["q_tail"]) if not q.empty else math.nan
    # Figure 1(b): the L2 runs of figure1_data at its largest rate against their start
    layers = pd.DataFrame(columns=list(LAYER_COLUMNS))
    top = runs[(runs["method"] == "l2") & (runs["dataset"] == d1)]
    if not top.empty:
        top = top[top["rate_percent"] == top["rate_percent"].max()]
        say(
            f"weights of {len(top)} L2 runs at {top['rate'].iloc[0]} against their pre-trained start"
        )
        from ..analysis import compare_weights

        tables = []
        for row in top.itertuples():
            result = compare_weights(
                str(row.model), str(Path(row.path) / "model.safetensors"), device=device
            )
            lower, higher = depth_groups(result)
            t = layer_contrast(result, lower, higher)
            t.insert(0, "run_id", row.run_id)
            tables.append(t)
        layers = pd.concat(tables, ignore_index=True)[list(LAYER_COLUMNS)]
    meta = {
        "runs_dir": str(root),
        "figure1_data": d1,
        "figure3_data": d3,
        "max_batches": max_batches,
        "n_runs": len(runs),
        "settings": _settings(runs),
    }
    out = ReproductionData(
        meta=meta,
        runs=runs[list(RUN_COLUMNS)].reset_index(drop=True),
        spectrum=spectrum.reset_index(drop=True),
        layers=layers.reset_index(drop=True),
    )
    return ReproductionData.from_dict(json.loads(json.dumps(out.to_dict())))  # as read back
