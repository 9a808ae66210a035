"""The tables of a weight comparison: columns, the result type, per-pair comparison and
assembly (used by :func:`~spectral_probe.analysis.weights.compare_weights`)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd
import torch

from .._results import TidyResult, records, write_result_json, write_tables_csv
from ..errors import ConfigError
from ..extract.weights import (
    INFERRED_NOTE,
    SourceMatrix,
    WeightMatrix,
)
from ..spectral import (
    BlockedOperator,
    MatrixComparison,
    PairChange,
    chance_subspace_energy,
    compare_matrices,
    compare_with_change,
    corresponding_cosines,
    effective_rank,
    energy_rank,
    first_below,
    gavish_donoho_rank,
    leading_mean,
    principal_cosines,
    randomized_svd,
    relative_change,
    spectral_norm,
    stable_rank,
    wedin_bounds,
    window_cosines,
)
from .update import DEFAULT_EPSILONS

SUMMARY_COLUMNS = {
    "layer": "layer name (module, plus :q/:k/:v or :gN for splits)",
    "kind": "conv, linear or attention",
    "type": "module class",
    "rows": "rows m of the unfolded matrix (output units)",
    "cols": "columns n of the unfolded matrix",
    "rank": "number of singular values, min(m, n)",
    "status": "ok, or nonfinite-a / nonfinite-b when a weight holds NaN/Inf",
    "cos_top": "mean |cos| over the leading 10% of indices",
    "cos_mean": "mean |cos| over all indices",
    "first_below": "first index whose |cos| falls below the threshold (empty: none)",
    "first_below_frac": "first_below / rank",
    "cos_window_mean": "mean spectral-window alignment (beyond chance) over all indices",
    "resolvable_frac": "share of indices whose Wedin bound is below 1",
    "principal_top": "mean cosine of the principal angles between the top-k subspaces",
    "sv_rel_change": "||s_b - s_a|| / ||s_a||",
    "w_rel_change": "||W_b - W_a||_F / ||W_a||_F",
    "e_norm": "||W_b - W_a||_2",
    "sigma1_a": "largest singular value of A",
    "sigma1_b": "largest singular value of B",
    "stable_rank_a": "sum s^2 / s_1^2 of A",
    "stable_rank_b": "sum s^2 / s_1^2 of B",
    "effective_rank_a": "entropy effective rank of A",
    "effective_rank_b": "entropy effective rank of B",
    "window_mean": "mean number of compared vectors in a spectral window",
    "dtype_a": "dtype of A's weight as stored (analysed upcast to float64)",
    "dtype_b": "dtype of B's weight as stored",
    "precision_only": "the dtypes differ and one side is the other rounded to the lower "
    "precision: the difference is one of precision, not of training",
}
#: extra columns when B is a base model plus a LoRA adapter
ADAPTER_COLUMNS = {
    "lora_rank": "rank r of the adapter's update of this layer (B = base + adapter)",
    "update_sigma1": "largest singular value of the update s B A (from the factors)",
    "update_rel_norm": "||s B A||_F / ||W_a||_F",
}
#: extra column with ``top`` (leading triplets by randomized SVD)
TOP_COLUMNS = {
    "top_residual": "largest a-posteriori residual bound of the leading triplets of A and B, "
    "relative to sigma_1: each computed sigma_i is within this share of sigma_1 of a true one",
}
#: intruder dimensions and the update's structure, per layer (off with ``intruder_k=0``)
CHANGE_COLUMNS = {
    "intruders": "left intruders: top-k left vectors u_i of B with max_j |<u_i, u^A_j>| < "
    "epsilon (peft's detector; k, epsilon in meta)",
    "intruders_right": "right intruders (v_i of B against all of A's right vectors)",
    "intruder_indices": "1-based indices of the left intruders, space-separated (JSON: a list, "
    "with intruder_sigma; intruders.csv: both sides)",
    "intruder_sigma_max": "largest singular value of B among the left intruders (0: none)",
    "update_stable_rank": "||dW||_F^2 / ||dW||_2^2 (0 for dW = 0); dW = B - A, or s B A",
    "update_effective_rank": "Roy & Vetterli: exp of the entropy of sigma_i(dW) / sum sigma (0 for dW = 0)",
    "update_rank_90": "fewest singular values of dW holding 90% of ||dW||_F^2",
    "update_rank_99": "fewest singular values of dW holding 99% of ||dW||_F^2",
    "update_gd_rank": "Gavish-Donoho optimal hard-threshold rank of dW (unknown noise)",
    "subspace_rank": "r of A's top-r / bottom-r singular subspaces (adapter rank, else "
    "--subspace-rank or 8; capped at min(m, n))",
    "top_energy": "share of ||dW||_F^2 in span U_A[:, :r] x span V_A[:, :r] (PiSSA's subspace)",
    "bottom_energy": "share of ||dW||_F^2 in A's bottom-r singular pair (MiLoRA's)",
    "top_energy_left": "share of ||dW||_F^2 in span U_A[:, :r] (output side only)",
    "top_energy_right": "share in span V_A[:, :r] (input side only)",
    "bottom_energy_left": "share in span U_A[:, -r:]",
    "bottom_energy_right": "share in span V_A[:, -r:]",
    "chance_energy": "(r/m)(r/n): what a random update puts in an r x r subspace pair",
}
#: ``intruders`` table: the top-k vectors of B on each side
INTRUDER_COLUMNS = {
    "layer": "layer name",
    "side": "left or right singular vectors",
    "index": "1-based index i of B's singular triplet",
    "sigma": "sigma_i of B",
    "max_cos": "max_j |cos| of B's i-th vector with A's j-th (NaN: B's vector undefined)",
    "intruder": "max_cos < epsilon",
}

ESD_SUMMARY_COLUMNS = {
    "alpha_a": "power-law exponent of A's ESD tail (with --esd; NaN: see esd.csv alpha_reason)",
    "alpha_b": "power-law exponent of B's ESD tail",
    "delta_alpha": "alpha_b - alpha_a",
    "alpha_hat_a": "alpha * log10 lambda_max of A",
    "alpha_hat_b": "alpha * log10 lambda_max of B",
}


@dataclass(frozen=True)
class WeightComparison(TidyResult):
    """Result of :func:`compare_weights`.

    Attributes:
        layers: one row per compared layer, columns :data:`SUMMARY_COLUMNS`.
        angles: tidy, one row per (layer, index): ``sigma_a``, ``sigma_b``, ``cos``,
            ``sin_bound``, ``resolvable``, ``cos_window``, ``window``.
        principal: tidy (layer, index, cos) for the principal angles of the top-k subspaces.
        skipped: layers that could not be paired, with the reason.
        meta: specs, options, timing and versions (with ``esd``: ``esd_summary`` per model;
            for a state dict that names no architecture: ``inferred_arch``).
        esd: with ``esd=True``, tidy (layer, model ``a``/``b``) rows of
            :data:`spectral_probe.analysis.esd.ESD_COLUMNS`; empty otherwise.
        update: for B = base + LoRA adapter, tidy (layer, index, sigma) singular values of
            each update ``s B A``, computed from the factors; empty otherwise.
        intruders: tidy rows of :data:`INTRUDER_COLUMNS`: B's top ``intruder_k`` vectors of
            each side with their ``max_cos`` (empty with ``intruder_k=0`` or ``top``).
    """

    layers: pd.DataFrame
    angles: pd.DataFrame
    principal: pd.DataFrame
    skipped: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    esd: pd.DataFrame = field(default_factory=pd.DataFrame)
    update: pd.DataFrame = field(default_factory=pd.DataFrame)
    intruders: pd.DataFrame = field(default_factory=pd.DataFrame)

    def sweep(self, epsilons: Sequence[float] = DEFAULT_EPSILONS) -> pd.DataFrame:
        """Intruder count against epsilon: tidy ``layer, side, epsilon, intruders``, plus
        ``layer = "(model)"`` totals per (side, epsilon); from :attr:`intruders`' ``max_cos``."""
        cols = ["layer", "side", "epsilon", "intruders"]
        if self.intruders.empty:
            return pd.DataFrame(columns=cols)
        rows = []
        groups = self.intruders.groupby(["layer", "side"], sort=False)["max_cos"]
        for (name, side), cos in groups:
            values = cos.to_numpy()
            rows += [
                {
                    "layer": name,
                    "side": side,
                    "epsilon": eps,
                    "intruders": int((values < eps).sum()),
                }
                for eps in epsilons
            ]
        frame = pd.DataFrame(rows, columns=cols)
        total = frame.groupby(["side", "epsilon"], as_index=False, sort=False)["intruders"].sum()
        total.insert(0, "layer", "(model)")
        return pd.concat([frame, total], ignore_index=True)

    def layer(self, name: str) -> pd.DataFrame:
        """The angle rows of one layer."""
        out = self.angles[self.angles["layer"] == name]
        if out.empty:
            raise KeyError(f"no compared layer named {name!r}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per-layer summaries with their per-index arrays."""
        # not dict(groupby): dict() calls a GroupBy's `keys` attribute, which is the column name
        by_layer = {name: g for name, g in self.angles.groupby("layer", sort=False)}  # noqa: C416
        by_principal = {name: g for name, g in self.principal.groupby("layer", sort=False)}  # noqa: C416
        by_intruders = _intruder_lists(self.intruders)
        layers = []
        for row in records(self.layers):
            g = by_layer.get(row["layer"])
            p = by_principal.get(row["layer"])
            if g is not None:
                for col in ("sigma_a", "sigma_b", "cos", "sin_bound", "cos_window", "window"):
                    row[col] = g[col].tolist()
            row["principal_cos"] = p["cos"].tolist() if p is not None else []
            if row["layer"] in by_intruders:
                row.update(by_intruders[row["layer"]])
            layers.append(row)
        out = {"meta": self.meta, "layers": layers, "skipped": records(self.skipped)}
        if not self.esd.empty:
            out["esd"] = records(self.esd)
        if not self.update.empty:
            out["update"] = records(self.update)
        if not self.intruders.empty:
            out["sweep"] = records(self.sweep())
        return out

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically)."""
        return write_result_json(path, self.to_dict())

    #: ``to_frame()``: one row per compared layer (as WeightWatcher's ``analyze()``)
    main_table: ClassVar[str] = "summary"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``summary`` (= ``layers``), ``angles``, ``principal``, ``skipped`` (and ``esd``)."""
        tables = {
            "summary": self.layers,
            "angles": self.angles,
            "principal": self.principal,
            "skipped": self.skipped,
        }
        if not self.esd.empty:
            tables["esd"] = self.esd
        if not self.update.empty:
            tables["update"] = self.update
        if not self.intruders.empty:
            tables["intruders"] = self.intruders
            tables["sweep"] = self.sweep()
        return tables

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``summary.csv``, ``angles.csv``, ``principal.csv``, ``skipped.csv`` (and ``esd.csv``)."""
        return write_tables_csv(directory, self.tables())


def _intruder_lists(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per layer: ``intruder_indices``/``intruder_sigma`` (1-based, left) and the ``_right`` ones,
    plus ``intruder_max_cos`` of the top-k vectors, for the JSON layer records."""
    out: dict[str, dict[str, Any]] = {}
    if frame.empty:
        return out
    for (name, side), g in frame.groupby(["layer", "side"], sort=False):
        tail = "" if side == "left" else "_right"
        hit = g[g["intruder"]]
        entry = out.setdefault(name, {})
        entry[f"intruder_indices{tail}"] = [int(i) for i in hit["index"]]
        entry[f"intruder_sigma{tail}"] = hit["sigma"].tolist()
        entry[f"intruder_max_cos{tail}"] = g["max_cos"].tolist()
    return out


def _change_info(
    change: PairChange,
    shape: tuple[int, int],
    epsilon: float,
    rtol: float | None,
) -> dict[str, Any]:
    """The :data:`CHANGE_COLUMNS` of one pair, and its intruder rows under ``"_intruder_rows"``."""
    s = change.update_s
    zero = change.update_fro == 0.0 or not s.numel() or float(s[0]) == 0.0
    rows = []
    hits: dict[str, list[int]] = {}
    for side, cos in (("left", change.max_cos_left), ("right", change.max_cos_right)):
        found = []
        for i, (c, sig) in enumerate(zip(cos.tolist(), change.sigma.tolist()), start=1):
            hit = c < epsilon  # NaN (an undefined vector) is never an intruder
            rows.append([side, i, sig, c, hit])
            if hit:
                found.append(i)
        hits[side] = found
    sigma = change.sigma.tolist()
    r = change.subspace_rank
    info: dict[str, Any] = {
        "intruders": len(hits["left"]),
        "intruders_right": len(hits["right"]),
        "intruder_indices": " ".join(map(str, hits["left"])),
        "intruder_sigma_max": max((sigma[i - 1] for i in hits["left"]), default=0.0),
        "update_stable_rank": 0.0 if zero else stable_rank(s),
        "update_effective_rank": 0.0 if zero else effective_rank(s),
        "update_rank_90": energy_rank(s, 0.9),
        "update_rank_99": energy_rank(s, 0.99),
        "update_gd_rank": gavish_donoho_rank(s, shape, rtol=rtol),
        "subspace_rank": r,
        **{
            f"{name}_energy" if "_" not in name else name.replace("_", "_energy_", 1): v
            for name, v in change.energy.items()
        },
        "chance_energy": chance_subspace_energy(shape, r, r),
        "_intruder_rows": rows,
    }
    return info


def _summary(
    wa: WeightMatrix | SourceMatrix, cmp: MatrixComparison | None, status: str, threshold: float
) -> dict[str, Any]:
    m, n = wa.matrix_shape if isinstance(wa, SourceMatrix) else wa.matrix.shape
    row: dict[str, Any] = {
        "layer": wa.name,
        "kind": wa.kind,
        "type": wa.module_type,
        "rows": m,
        "cols": n,
        "rank": min(m, n),
        "status": status,
    }
    if cmp is None:
        return row
    r = cmp.cos.numel()
    fb = first_below(cmp.cos, threshold)
    row.update(
        cos_top=leading_mean(cmp.cos, 0.1),
        cos_mean=leading_mean(cmp.cos, 1.0),
        first_below=fb,
        first_below_frac=fb / r if fb is not None else math.nan,
        cos_window_mean=leading_mean(cmp.cos_window, 1.0),
        resolvable_frac=float((cmp.sin_bound < 1).double().mean()),
        principal_top=float(cmp.principal.mean()) if cmp.principal.numel() else math.nan,
        sv_rel_change=relative_change(cmp.s_a, cmp.s_b),
        w_rel_change=cmp.e_fro / cmp.a_fro if cmp.a_fro else math.nan,
        e_norm=cmp.e_norm,
        sigma1_a=float(cmp.s_a[0]),
        sigma1_b=float(cmp.s_b[0]),
        stable_rank_a=stable_rank(cmp.s_a),
        stable_rank_b=stable_rank(cmp.s_b),
        effective_rank_a=effective_rank(cmp.s_a),
        effective_rank_b=effective_rank(cmp.s_b),
        window_mean=float(cmp.window.double().mean()) if r else math.nan,
    )
    return row


def _angle_frame(name: str, cmp: MatrixComparison) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": name,
            "index": range(1, cmp.cos.numel() + 1),
            "sigma_a": cmp.s_a.cpu().numpy(),
            "sigma_b": cmp.s_b.cpu().numpy(),
            "cos": cmp.cos.cpu().numpy(),
            "sin_bound": cmp.sin_bound.cpu().numpy(),
            "resolvable": (cmp.sin_bound < 1).cpu().numpy(),
            "cos_window": cmp.cos_window.cpu().numpy(),
            "window": cmp.window.cpu().numpy(),
        }
    )


def _device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("expected a CUDA device for --device cuda, found none on this machine")
    return dev


def _assemble(
    first: Sequence[WeightMatrix | SourceMatrix],
    outcomes: Sequence[tuple[str, MatrixComparison | None, list[dict[str, Any]]]],
    skipped_layers: Sequence[Any],
    *,
    specs: tuple[str, str],
    inferred: list[str],
    options: dict[str, Any],
    dev: torch.device,
    started: float,
    threshold: float,
    esd: bool,
    extra: Sequence[dict[str, Any]] | None = None,
    notes: list[str] | None = None,
    update: pd.DataFrame | None = None,
) -> WeightComparison:
    """The result tables from per-layer outcomes (shared by modules and tensor sources)."""
    rows, angle_frames, principal_frames, esd_rows = [], [], [], []
    intruder_rows: list[list[Any]] = []
    for i, (wa, (status, cmp, fits)) in enumerate(zip(first, outcomes)):
        if fits:
            esd_rows += [{"layer": wa.name, "model": tag} | fit for tag, fit in zip("ab", fits)]
        if cmp is not None:
            angle_frames.append(_angle_frame(wa.name, cmp))
            principal_frames.append(
                pd.DataFrame(
                    {
                        "layer": wa.name,
                        "index": range(1, cmp.principal.numel() + 1),
                        "cos": cmp.principal.cpu().numpy(),
                    }
                )
            )
        rows.append(_summary(wa, cmp, status, threshold))
        if fits:
            rows[-1].update(
                alpha_a=fits[0]["alpha"],
                alpha_b=fits[1]["alpha"],
                delta_alpha=fits[1]["alpha"] - fits[0]["alpha"],
                alpha_hat_a=fits[0]["alpha_hat"],
                alpha_hat_b=fits[1]["alpha_hat"],
            )
        if extra is not None:
            found = {k: v for k, v in extra[i].items() if k != "_intruder_rows"}
            intruder_rows += [[wa.name, *r] for r in extra[i].get("_intruder_rows", [])]
            rows[-1].update(found)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elapsed = time.perf_counter() - started
    columns = list(SUMMARY_COLUMNS)
    if extra is not None and any("lora_rank" in e for e in extra):
        columns += list(ADAPTER_COLUMNS)
    if options.get("top") is not None:
        columns += list(TOP_COLUMNS)
    changed = options.get("intruder_k") and options.get("top") is None
    if changed:
        columns += list(CHANGE_COLUMNS)
    columns += list(ESD_SUMMARY_COLUMNS) if esd else []
    layers = pd.DataFrame(rows).reindex(columns=columns)
    angles = pd.concat(angle_frames, ignore_index=True) if angle_frames else _empty_angles()
    principal = (
        pd.concat(principal_frames, ignore_index=True)
        if principal_frames
        else pd.DataFrame(columns=["layer", "index", "cos"])
    )
    skipped = pd.DataFrame(
        [
            {
                "layer": s.name,
                "reason": s.reason,
                "shape_a": "x".join(map(str, s.shape_a)) if s.shape_a else None,
                "shape_b": "x".join(map(str, s.shape_b)) if s.shape_b else None,
            }
            for s in skipped_layers
        ],
        columns=["layer", "reason", "shape_a", "shape_b"],
    )
    from .. import __version__

    meta: dict[str, Any] = {
        "model_a": specs[0],
        "model_b": specs[1],
        "options": options,
        "device": str(dev),
        "seconds": elapsed,
        "versions": {"spectral_probe": __version__, "torch": str(torch.__version__)},
    }
    if options.get("intruder_k"):
        meta["intruder_k"] = options["intruder_k"]
        meta["intruder_epsilon"] = options["intruder_epsilon"]
    notes = list(notes or [])
    if options.get("intruder_k") and options.get("top") is not None:
        notes.append(
            "intruders and the update's structure skipped with --top (only A's leading singular "
            "vectors are computed; an intruder needs all of them)"
        )
    if notes:
        meta["notes"] = notes
    if inferred:
        meta["inferred_arch"] = {"models": inferred, "note": INFERRED_NOTE}
    esd_frame = pd.DataFrame(esd_rows)
    if esd:
        from .esd import ESD_COLUMNS, esd_summary

        esd_frame = esd_frame.reindex(columns=["layer", "model", *ESD_COLUMNS])
        meta["esd_summary"] = {
            tag: esd_summary(esd_frame[esd_frame["model"] == tag]) for tag in "ab"
        }
    return WeightComparison(
        layers,
        angles,
        principal,
        skipped,
        meta,
        esd_frame,
        update if update is not None else pd.DataFrame(),
        pd.DataFrame(intruder_rows, columns=list(INTRUDER_COLUMNS)) if changed else pd.DataFrame(),
    )


def _compare_pair(
    a: torch.Tensor,
    b: torch.Tensor,
    vectors: Literal["left", "right"],
    top_k: int,
    window: float,
    method: Literal["gram", "svd"],
    top: int | None,
    change: tuple[int, int] | None = None,
    factors: tuple[torch.Tensor, torch.Tensor, float] | None = None,
) -> tuple[MatrixComparison, float | None, PairChange | None]:
    """:func:`compare_matrices`, or with ``top`` the same from the leading triplets only.

    With ``change = (intruder_k, subspace_rank)`` (and no ``top``), also the pair's
    :class:`~spectral_probe.spectral.PairChange` from the same decompositions
    (:func:`~spectral_probe.spectral.compare_with_change`; ``factors`` for an adapter).

    The leading ``top + 1`` triplets of each matrix come from
    :func:`~spectral_probe.spectral.randomized_svd`; the extra one gives the ``top``-th index
    its lower neighbour for the Wedin bound and the window, and is then dropped. Returns the
    comparison, the largest residual bound relative to sigma_1 (``None`` without ``top``) and
    the change (``None`` without ``change`` or with ``top``).
    """
    rank = min(a.shape)
    if top is None or top >= rank:
        if change is not None and rank > 0:
            cmp, found = compare_with_change(
                a,
                b,
                vectors=vectors,
                top_k=top_k,
                window=window,
                method=method,
                intruder_k=change[0],
                subspace_rank=change[1],
                factors=factors,
            )
            return cmp, None, found
        return (
            compare_matrices(a, b, vectors=vectors, top_k=top_k, window=window, method=method),
            None,
            None,
        )
    k = min(top + 1, rank)
    # the range in float32 from row blocks, the core and the residuals in float64 from row
    # blocks: never a whole float64 (or float32) copy of either matrix
    dev = a.device
    ra, rb = (
        randomized_svd(
            BlockedOperator(w, torch.float32, device=dev),
            k,
            refine=BlockedOperator(w, torch.float64, device=dev),
        )
        for w in (a, b)
    )
    basis_a = ra.U if vectors == "left" else ra.V
    basis_b = rb.U if vectors == "left" else rb.V
    diff = _float_difference(a, b)  # ||E||_2 only scales Wedin's bounds: float32 is ample
    e_norm = spectral_norm(diff)
    del diff
    bound = wedin_bounds(ra.S, rb.S, float(e_norm), square=a.shape[0] == a.shape[1])
    cos_window, sizes = window_cosines(basis_a, basis_b, ra.S, rb.S, window)
    lead = min(top_k, top)
    principal = principal_cosines(basis_a[:, :lead], basis_b[:, :lead])
    sigma1 = float(max(ra.S[0], rb.S[0])) or 1.0
    residual = float(max(ra.bound[:top].max(), rb.bound[:top].max())) / sigma1
    cmp = MatrixComparison(
        s_a=ra.S[:top],
        s_b=rb.S[:top],
        cos=corresponding_cosines(basis_a[:, :top], basis_b[:, :top]),
        sin_bound=bound[:top],
        cos_window=cos_window[:top],
        window=sizes[:top],
        principal=principal,
        e_norm=float(e_norm),
        e_fro=BlockedOperator(b, minus=a, device=dev).frobenius(),
        a_fro=BlockedOperator(a, device=dev).frobenius(),
    )
    return cmp, residual, None


def _float_difference(a: torch.Tensor, b: torch.Tensor, block_rows: int = 2048) -> torch.Tensor:
    """``b - a`` in float32, filled block by block (no float64 or whole-matrix temporaries)."""
    out = torch.empty(a.shape, dtype=torch.float32, device=a.device)
    for first in range(0, a.shape[0], block_rows):
        rows = slice(first, first + block_rows)
        torch.sub(b[rows].float(), a[rows].float(), out=out[rows])
    return out


def _gram_rtol(method: str) -> float | None:
    """Singular values of dW through a Gram carry ~sqrt(eps) sigma_1 of rounding: the rank
    tolerance of the Gavish-Donoho rank for them (LAPACK's: the default)."""
    return 1e-7 if method == "gram" else None


def _precision_only(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` and ``b`` differ in dtype and the finer one rounds exactly to the other."""
    if a.dtype == b.dtype or not (a.is_floating_point() and b.is_floating_point()):
        return False
    fine, coarse = (a, b) if torch.finfo(a.dtype).eps < torch.finfo(b.dtype).eps else (b, a)
    return bool(torch.equal(fine.to(coarse.dtype), coarse))


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _empty_angles() -> pd.DataFrame:
    cols = [
        "layer",
        "index",
        "sigma_a",
        "sigma_b",
        "cos",
        "sin_bound",
        "resolvable",
        "cos_window",
        "window",
    ]
    return pd.DataFrame(columns=cols)
