"""What ``spectral-probe compare-weights`` prints: the per-layer summary, intruders, fine-tunes."""

from __future__ import annotations

from typing import Any

from ._common import console, print_frame
from ._weights import print_esd_summary


def print_many(result: Any) -> None:
    df = result.fine_tunes.copy()
    cols = ["fine_tune", "model_b", "layers", "cos_top", "w_rel_change"]
    heads = ["#", "fine-tune", "layers", "|cos| top", "ΔW/W"]
    if df["intruders"].notna().any():
        cols += [
            "intruders",
            "intruders_right",
            "layers_with_intruders",
            "top_energy",
            "bottom_energy",
        ]
        heads += ["intr. L", "intr. R", "layers w/", "top-r E", "bottom-r E"]
    print_frame(
        df, cols, headers=heads, title=f"{result.meta['model_a']}  vs  {len(df)} fine-tunes"
    )
    console.print(
        "one row per fine-tune (means over layers; intruder counts summed); per layer: "
        "layers.csv / --json",
        style="dim",
    )


def print_summary(result) -> None:  # type: ignore[no-untyped-def]
    df = result.layers.copy()
    df["shape"] = df["rows"].astype(str) + "x" + df["cols"].astype(str)
    df["resolvable"] = df["resolvable_frac"]
    cols = [
        "layer",
        "shape",
        "cos_top",
        "cos_mean",
        "first_below",
        "cos_window_mean",
        "resolvable",
        "w_rel_change",
    ]
    heads = ["layer", "matrix", "|cos| top", "|cos| all", "first<thr", "window", "resolv.", "ΔW/W"]
    df["first_below"] = df["first_below"].map(lambda v: "" if v != v or v is None else str(int(v)))
    if "alpha_a" in df:
        cols += ["alpha_a", "alpha_b", "delta_alpha"]
        heads += ["α A", "α B", "Δα"]
    print_frame(
        df, cols, headers=heads, title=f"{result.meta['model_a']}  vs  {result.meta['model_b']}"
    )
    console.print(
        "|cos| top: mean over the leading 10% of indices; window: alignment with the vectors of "
        "near-equal singular value, beyond chance; resolv.: share of indices with Wedin bound < 1 "
        "(--json for all columns)",
        style="dim",
    )
    if not result.skipped.empty:
        names = ", ".join(result.skipped["layer"].head(5))
        more = f" (+{len(result.skipped) - 5} more)" if len(result.skipped) > 5 else ""
        console.print(
            f"skipped {len(result.skipped)} layer(s) not shared by both models: {names}{more}"
        )
    bad = result.layers[result.layers["status"] != "ok"]
    if not bad.empty:
        console.print(
            f"[yellow]{len(bad)} layer(s) hold NaN/Inf weights and were not analysed: {', '.join(bad['layer'])}[/]"
        )
    if "lora_rank" in df and df["lora_rank"].notna().any():
        updated = df[df["lora_rank"].notna()]
        ranks = ", ".join(str(int(r)) for r in sorted(set(updated["lora_rank"])))
        console.print(
            f"adapter: {len(updated)} layer(s) updated (rank {ranks}); largest update σ1 "
            f"{updated['update_sigma1'].max():.3g}, mean ||sBA||/||W|| "
            f"{updated['update_rel_norm'].mean():.3g} (spectra from the factors: update.csv)"
        )
    if "intruders" in df:
        print_intruders(result)
    for tag, summary in result.meta.get("esd_summary", {}).items():
        print_esd_summary(summary, f"{tag.upper()}: ")
    console.print(
        f"compared {len(result.layers)} layers in {result.meta['seconds']:.2f} s on {result.meta['device']}"
    )


def print_intruders(result) -> None:  # type: ignore[no-untyped-def]
    """One line: intruders in total (left, right) and the layers that have them."""
    df = result.layers
    left = df["intruders"].fillna(0)
    hit = df[left > 0]
    meta = result.meta
    names = ", ".join(hit["layer"].head(3)) + (f" (+{len(hit) - 3} more)" if len(hit) > 3 else "")
    console.print(
        f"intruders (k={meta['intruder_k']}, ε={meta['intruder_epsilon']:g}): {int(left.sum())} "
        f"left, {int(df['intruders_right'].fillna(0).sum())} right, in {len(hit)} of {len(df)} "
        f"layer(s){': ' + names if names else ''}; ΔW in A's top-r subspace "
        f"{df['top_energy'].mean():.3g} of its energy on average, bottom-r "
        f"{df['bottom_energy'].mean():.3g} (intruders.csv, sweep.csv)"
    )
