r"""The deciding numbers of Figures 1(c), 1(d), 3(b) and 3(c): feature spectra by rate and method.

Pure functions of a :class:`~spectral_probe.analysis.FeatureSpectra`'s per-batch singular
values (model labels are run ids) and the runs' table; the claims, rules, :class:`Finding`
and :func:`mean_ci` are :mod:`~spectral_probe.report.reproduction_numbers`'.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .reproduction_numbers import Finding, _below, mean_ci, not_run

__all__ = ["run_spectrum_stats", "spectrum_findings"]


def run_spectrum_stats(batches: pd.DataFrame) -> pd.DataFrame:
    r"""Per model (run): ``q_all`` = mean of :math:`\sigma_i/\sigma_1` over all indices and batches,
    ``q_tail`` = mean over batches of the smaller half's energy share
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


def _rate_finding(figure: str, stats: pd.DataFrame, runs: pd.DataFrame, column: str) -> Finding:
    """1(c)/1(d): ``column`` of the L2 runs by rate, the lowest/highest-rate ratio by seed."""
    from scipy import stats as st

    df = runs.merge(stats, left_on="run_id", right_on="model")
    if df["rate_percent"].nunique() < 2:
        return not_run(figure)
    lo, hi = df["rate_percent"].min(), df["rate_percent"].max()
    a = df[df["rate_percent"] == lo].set_index("seed")[column]
    b = df[df["rate_percent"] == hi].set_index("seed")[column]
    ratio = (a / b).dropna()
    m, low, high, n = mean_ci(ratio.to_numpy())
    rho = float(st.spearmanr(df["rate_percent"], df[column]).statistic) if len(df) > 2 else math.nan
    if len(df) == 2:
        rho = float(np.sign(df.sort_values("rate_percent")[column].diff().iloc[-1]))
    table = df.groupby(["rate", "rate_percent"])[column].agg(["mean", "std", "count"]).reset_index()
    table = table.sort_values("rate_percent").rename(columns={"count": "n"})
    above = (low > 1) if n >= 2 else (m > 1)
    verdict = "reproduced" if above and rho < 0 else "not reproduced"
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
        verdict,
        provisional=int(table["n"].min()) < 3,
        numbers=numbers,
        table=table,
        runs=tuple(df["run_id"]),
    )


def _bss_table(batches: pd.DataFrame, runs: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Per (rate, seed) pair of L2 / L2+BSS runs: the ratios of 3(b) and 3(c)."""
    norm = batches.groupby(["model", "index"])["sigma_norm"].mean()
    tail = stats.set_index("model")["q_tail"]
    rows = []
    for (rate, seed), g in runs.groupby(["rate", "seed"], sort=False):
        by = dict(zip(g["method"], g["run_id"]))
        if "l2" not in by or "l2+bss" not in by or by["l2"] not in tail or by["l2+bss"] not in tail:
            continue
        sa, sb = norm.loc[by["l2"]].to_numpy(), norm.loc[by["l2+bss"]].to_numpy()
        r = sb / sa
        rows.append(
            {
                "rate": rate,
                "rate_percent": float(g["rate_percent"].iloc[0]),
                "seed": seed,
                "ratio_smallest": float(r[-1]),
                "ratios_smallest4": r[-4:][::-1].tolist(),
                "ratio_tail": float(tail[by["l2+bss"]] / tail[by["l2"]]),
            }
        )
    return pd.DataFrame(rows)


def _bss_findings(pairs: pd.DataFrame) -> tuple[Finding, Finding]:
    """3(b) and 3(c) from :func:`_bss_table`."""
    if pairs.empty:
        return not_run("3b"), not_run("3c")
    rows = []
    ok_b, ok_c = True, True
    for (rate, pct), g in pairs.groupby(["rate", "rate_percent"], sort=False):
        m1, l1, h1, n = mean_ci(g["ratio_smallest"].to_numpy())
        four = np.mean(np.stack(g["ratios_smallest4"].to_numpy()), axis=0)
        below4 = int((four < 1).sum())
        mt, lt, ht, _ = mean_ci(g["ratio_tail"].to_numpy())
        ok_b &= _below(m1, h1, n, 1.0) and below4 >= 2
        ok_c &= _below(mt, ht, n, 1.0)
        rows.append(
            {
                "rate": rate,
                "rate_percent": pct,
                "n": n,
                "ratio_smallest": m1,
                "ci_low_smallest": l1,
                "ci_high_smallest": h1,
                "smallest4_below_1": below4,
                "ratio_tail": mt,
                "ci_low_tail": lt,
                "ci_high_tail": ht,
            }
        )
    table = pd.DataFrame(rows).sort_values("rate_percent").reset_index(drop=True)
    provisional = int(table["n"].min()) < 3
    nb = {
        "rates": table["rate"].tolist(),
        "ratio_smallest": table["ratio_smallest"].tolist(),
        "smallest4_below_1": table["smallest4_below_1"].tolist(),
        "n_seeds": int(table["n"].min()),
    }
    nc = {
        "rates": table["rate"].tolist(),
        "ratio_tail": table["ratio_tail"].tolist(),
        "ci_high_tail": table["ci_high_tail"].tolist(),
        "n_seeds": int(table["n"].min()),
    }
    b = Finding(
        "3b",
        "reproduced" if ok_b else "not reproduced",
        provisional,
        nb,
        table.drop(columns=["ratio_tail", "ci_low_tail", "ci_high_tail"]),
    )
    c = Finding(
        "3c",
        "reproduced" if ok_c else "not reproduced",
        provisional,
        nc,
        table[["rate", "rate_percent", "n", "ratio_tail", "ci_low_tail", "ci_high_tail"]],
    )
    return b, c


def spectrum_findings(
    batches: pd.DataFrame | None, fig1: pd.DataFrame, fig3: pd.DataFrame
) -> dict[str, Finding]:
    """1(c), 1(d) from the L2 runs ``fig1``; 3(b), 3(c) from the L2 and L2+BSS runs ``fig3``.

    ``batches``: a :class:`~spectral_probe.analysis.FeatureSpectra`'s ``batches`` table whose
    model labels are the run ids (or ``None``: nothing measured).
    """
    if batches is None or batches.empty:
        return {f: not_run(f) for f in ("1c", "1d", "3b", "3c")}
    stats = run_spectrum_stats(batches)
    out = {
        "1c": _rate_finding("1c", stats, fig1, "q_all") if not fig1.empty else not_run("1c"),
        "1d": _rate_finding("1d", stats, fig1, "q_tail") if not fig1.empty else not_run("1d"),
    }
    b, c = _bss_findings(_bss_table(batches, fig3, stats) if not fig3.empty else pd.DataFrame())
    ids = tuple(fig3["run_id"])
    out["3b"] = Finding(
        b.figure, b.verdict, b.provisional, b.numbers, b.table, ids if not b.table.empty else ()
    )
    out["3c"] = Finding(
        c.figure, c.verdict, c.provisional, c.numbers, c.table, ids if not c.table.empty else ()
    )
    return out
