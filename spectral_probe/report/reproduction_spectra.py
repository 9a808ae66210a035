r"""The deciding numbers of Figures 1(c), 1(d), 3(b) and 3(c): feature spectra by rate and method.

Pure functions of two tables of
:class:`~spectral_probe.report.reproduction_data.ReproductionData`: the runs (with each
run's ``q_all`` and ``q_tail``) and the per-run mean spectrum (``run_id``, ``index``,
``sigma_norm``: the mean over test batches of :math:`\sigma_i/\sigma_1`). The claims, rules,
:class:`Finding` and the interval functions are
:mod:`~spectral_probe.report.reproduction_numbers`'.
"""

from __future__ import annotations

import math

import pandas as pd

from .reproduction_numbers import (
    PAPER_EFFECTS,
    Finding,
    combine_verdicts,
    log_ratio_ci,
    not_run,
    pooled_log_ratio,
    three_way,
)

__all__ = ["run_spectrum_stats", "mean_spectrum", "spectrum_findings", "bss_pairs"]


def run_spectrum_stats(batches: pd.DataFrame) -> pd.DataFrame:
    r"""Per model (run), from a :class:`~spectral_probe.analysis.FeatureSpectra`'s ``batches``:
    ``q_all`` = mean of :math:`\sigma_i/\sigma_1` over all indices and batches, ``q_tail`` =
    mean over batches of the smaller half's energy share
    :math:`\sum_{i \ge s} \sigma_i^2 / \sum_i \sigma_i^2` (``s`` = ``small_half_start(k)``),
    and ``k`` (values per batch).
    """
    from ..plotting.features import small_half_start

    rows = []
    for model, g in batches.groupby("model", sort=False):
        k = int(g["index"].max())
        tail = g[g["index"] >= small_half_start(k)].groupby("batch")["energy"].sum()
        rows.append(
            {
                "model": model,
                "k": k,
                "q_all": float(g["sigma_norm"].mean()),
                "q_tail": float(tail.mean()),
            }
        )
    return pd.DataFrame(rows, columns=["model", "k", "q_all", "q_tail"])


def _rate_finding(figure: str, runs: pd.DataFrame, column: str) -> Finding:
    """1(c)/1(d): ``column`` of the L2 runs by rate, the lowest/highest-rate ratio by seed."""
    from scipy import stats as st

    df = runs.dropna(subset=[column])
    if df["rate_percent"].nunique() < 2:
        return not_run(figure)
    lo, hi = df["rate_percent"].min(), df["rate_percent"].max()
    a = df[df["rate_percent"] == lo].set_index("seed")[column]
    b = df[df["rate_percent"] == hi].set_index("seed")[column]
    m, low, high, n = log_ratio_ci((a / b).dropna().to_numpy(dtype=float))
    rho = float(st.spearmanr(df["rate_percent"], df[column]).statistic) if len(df) > 2 else math.nan
    table = df.groupby(["rate", "rate_percent"])[column].agg(["mean", "std", "count"]).reset_index()
    table = table.sort_values("rate_percent").rename(columns={"count": "n"})
    numbers = {
        "quantity": column,
        "lowest_rate": str(df.loc[df["rate_percent"] == lo, "rate"].iloc[0]),
        "highest_rate": str(df.loc[df["rate_percent"] == hi, "rate"].iloc[0]),
        "ratio": m,
        "ratio_ci_low": low,
        "ratio_ci_high": high,
        "n_seeds": n,
        "spearman_rho": rho,
    }
    return Finding(
        figure,
        three_way(low, high, direction=1, null=1.0, paper=PAPER_EFFECTS[figure]),
        provisional=int(table["n"].min()) < 3,
        numbers=numbers,
        table=table.reset_index(drop=True),
        runs=tuple(df["run_id"]),
    )


def bss_pairs(runs: pd.DataFrame, spectrum: pd.DataFrame) -> pd.DataFrame:
    """Per (rate, seed) pair of an L2 and an L2+BSS (k = 1) run: the ratios of 3(b) and 3(c).

    Columns: ``rate``, ``rate_percent``, ``seed``, ``ratio_b`` and ``ratio_b1`` (sigma_i /
    sigma_1 with BSS over without, at the smallest index b and at b - 1), ``ratio_tail``
    (the smaller half's energy share with BSS over without).
    """
    cols = ["rate", "rate_percent", "seed", "ratio_b", "ratio_b1", "ratio_tail"]
    if runs.empty or spectrum.empty:
        return pd.DataFrame(columns=cols)
    norm = spectrum.set_index(["run_id", "index"])["sigma_norm"].sort_index()
    have = set(spectrum["run_id"])
    tail = runs.set_index("run_id")["q_tail"]
    rows = []
    for (rate, seed), g in runs.groupby(["rate", "seed"], sort=False):
        by = dict(zip(g["method"], g["run_id"]))
        if "l2" not in by or "l2+bss" not in by or not {by["l2"], by["l2+bss"]} <= have:
            continue
        sa = norm.loc[by["l2"]].to_numpy(dtype=float)
        sb = norm.loc[by["l2+bss"]].to_numpy(dtype=float)
        r = sb / sa
        rows.append(
            {
                "rate": rate,
                "rate_percent": float(g["rate_percent"].iloc[0]),
                "seed": seed,
                "ratio_b": float(r[-1]),
                "ratio_b1": float(r[-2]) if r.size > 1 else math.nan,
                "ratio_tail": float(tail[by["l2+bss"]] / tail[by["l2"]]),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def _per_rate(pairs: pd.DataFrame, column: str) -> pd.DataFrame:
    rows = []
    for (rate, pct), g in pairs.groupby(["rate", "rate_percent"], sort=True):
        m, lo, hi, n = log_ratio_ci(g[column].to_numpy(dtype=float))
        rows.append(
            {"rate": rate, "rate_percent": pct, "n": n, column: m, "ci_low": lo, "ci_high": hi}
        )
    return pd.DataFrame(rows).sort_values("rate_percent").reset_index(drop=True)


def _pooled(pairs: pd.DataFrame, column: str) -> dict[str, float]:
    return pooled_log_ratio(
        {rate: g[column].to_numpy(dtype=float) for rate, g in pairs.groupby("rate", sort=True)}
    )


def _bss_findings(pairs: pd.DataFrame) -> tuple[Finding, Finding]:
    """3(b) and 3(c) from :func:`bss_pairs`."""
    if pairs.empty:
        return not_run("3b"), not_run("3c")
    provisional = int(pairs.groupby("rate").size().min()) < 3
    nb: dict[str, object] = {}
    tests = []
    for column, label in (("ratio_b", "b"), ("ratio_b1", "b1")):
        p = _pooled(pairs, column)
        v = three_way(p["ci_low"], p["ci_high"], direction=-1, null=1.0)
        tests.append(v)
        nb.update(
            {
                f"pooled_ratio_{label}": p["ratio"],
                f"pooled_ci_low_{label}": p["ci_low"],
                f"pooled_ci_high_{label}": p["ci_high"],
                f"verdict_{label}": v,
            }
        )
    nb["df"] = _pooled(pairs, "ratio_b")["df"]
    nb["n_pairs"] = len(pairs)
    tb = _per_rate(pairs, "ratio_b").rename(columns={"ci_low": "ci_low_b", "ci_high": "ci_high_b"})
    tb1 = _per_rate(pairs, "ratio_b1")
    tb["ratio_b1"], tb["ci_low_b1"], tb["ci_high_b1"] = (
        tb1["ratio_b1"],
        tb1["ci_low"],
        tb1["ci_high"],
    )
    pc = _pooled(pairs, "ratio_tail")
    nc = {
        "pooled_ratio": pc["ratio"],
        "pooled_ci_low": pc["ci_low"],
        "pooled_ci_high": pc["ci_high"],
        "df": pc["df"],
        "p_below": pc["p_below"],
        "stouffer_p_below": pc["stouffer_p_below"],
        "n_pairs": len(pairs),
    }
    vc = three_way(pc["ci_low"], pc["ci_high"], direction=-1, null=1.0, paper=PAPER_EFFECTS["3c"])
    b = Finding("3b", combine_verdicts(tests), provisional, nb, tb)
    c = Finding("3c", vc, provisional, nc, _per_rate(pairs, "ratio_tail"))
    return b, c


def spectrum_findings(
    runs: pd.DataFrame, spectrum: pd.DataFrame, fig1: pd.DataFrame, fig3: pd.DataFrame
) -> dict[str, Finding]:
    """1(c), 1(d) from the L2 runs ``fig1``; 3(b), 3(c) from the L2 and L2+BSS runs ``fig3``.

    ``fig1`` and ``fig3`` are rows of ``runs`` (which holds ``q_all`` and ``q_tail``);
    ``spectrum`` is the per-run mean spectrum (``run_id``, ``index``, ``sigma_norm``).
    """
    if "q_all" not in runs or runs["q_all"].isna().all():
        return {f: not_run(f) for f in ("1c", "1d", "3b", "3c")}
    out = {
        "1c": _rate_finding("1c", fig1, "q_all") if not fig1.empty else not_run("1c"),
        "1d": _rate_finding("1d", fig1, "q_tail") if not fig1.empty else not_run("1d"),
    }
    pairs = bss_pairs(fig3, spectrum)
    b, c = _bss_findings(pairs)
    ids = tuple(fig3["run_id"]) if not pairs.empty else ()
    out["3b"] = Finding(b.figure, b.verdict, b.provisional, b.numbers, b.table, ids)
    out["3c"] = Finding(c.figure, c.verdict, c.provisional, c.numbers, c.table, ids)
    return out


def mean_spectrum(batches: pd.DataFrame) -> pd.DataFrame:
    """Per run and index, the mean over test batches of sigma_i / sigma_1 (``run_id``, ``index``, ``sigma_norm``)."""
    out = batches.groupby(["model", "index"], sort=True)["sigma_norm"].mean().reset_index()
    return (
        out.rename(columns={"model": "run_id"})
        .astype({"index": int})
        .pipe(lambda d: d[["run_id", "index", "sigma_norm"]])
    )
