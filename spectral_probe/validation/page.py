"""The numbers of docs/validation.md, regenerated from committed data.

Every table of the validation page sits between two markers,
``<!-- generated: NAME -->`` and ``<!-- end: NAME -->``, and is rendered here from small
files committed beside the page (``docs/validation/data/``) or shipped with the package
(the paper's Table 2). ``spectral-probe validate --page docs/validation.md`` rewrites the
blocks; ``--check`` only reports whether they are up to date (a test runs it).

Data files:

* ``delta-source-norm*.csv``: one row per run of ``sweeps/delta-source-norm*.toml``
  (:func:`export_runs`): model, data, rate, method, DELTA's ``source_norm``, seed, test
  accuracy, and the first log record's task loss and DELTA penalty.
* ``quick/``: ``policies.csv`` and ``tasks.csv`` of ``spectral-probe validate --quick``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from .retrospective import RetrospectiveResult

__all__ = ["BLOCKS", "export_runs", "render_blocks", "update_page"]

_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end: (?P=name) -->)", re.S
)


def _num(x: float, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _md(header: list[str], rows: list[list[str]]) -> str:
    from .summary import _md as md

    return md(header, rows).rstrip("\n") + "\n"


# -- export -------------------------------------------------------------------------------
def _first_losses(run: Path) -> dict[str, float]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if any(k.startswith("loss_") for k in rec):
            return {k: float(v) for k, v in rec.items() if k.startswith("loss_")}
    return {}


def export_runs(root: str | Path) -> pd.DataFrame:
    """One tidy row per finished run under ``root``: what the page's DELTA table reads.

    Columns: ``model``, ``dataset``, ``rate``, ``method``, ``source_norm`` (DELTA's, empty
    without DELTA), ``seed``, ``iterations``, ``test_accuracy`` (%), ``first_loss_task``,
    ``first_loss_delta`` (the first log record's terms: means over the first ``log_every``
    iterations), ``train_seconds``, ``run_id``.
    """
    from ..training.aggregate import collect_runs

    runs = collect_runs(root)
    if runs.empty:
        raise ConfigError(f"expected finished runs under {root}, found none")
    norm = runs.get("hp.delta.source_norm")
    runs["source_norm"] = [
        (str(n) if isinstance(n, str) else "batch") if "delta" in str(m) else ""
        for m, n in zip(runs["method"], norm if norm is not None else [None] * len(runs))
    ]
    first = [_first_losses(Path(p)) for p in runs["path"]]
    runs["first_loss_task"] = [f.get("loss_task", math.nan) for f in first]
    runs["first_loss_delta"] = [f.get("loss_delta", math.nan) for f in first]
    cols = ["model", "dataset", "rate", "method", "source_norm", "seed", "iterations"]
    cols += ["test_accuracy", "first_loss_task", "first_loss_delta", "train_seconds", "run_id"]
    return runs[cols].sort_values(["model", "method", "source_norm", "seed"]).reset_index(drop=True)


# -- blocks -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _retrospective() -> RetrospectiveResult:
    """The Table-2 retrospective, computed once for the three blocks that read it."""
    from .retrospective import retrospective

    return retrospective()


def _retrospective_policies(data: Path) -> str:
    r = _retrospective()
    rows = [
        [p.policy, _num(p.regret), _num(p.max_regret), f"{100 * p.share_within:.0f}%", str(p.wins)]
        for p in r.policies.itertuples()
    ]
    head = ["policy", "mean regret (points)", "max regret", "share within 0.5", "cells won"]
    return _md(head, rows)


def _retrospective_lodo(data: Path) -> str:
    r = _retrospective()
    rows = [[x.dataset, x.chosen, _num(x.regret)] for x in r.lodo.itertuples()]
    rows.append(["**mean over the 20 cells**", "", f"**{_num(r.lodo_regret)}**"])
    return _md(["held-out dataset", "chosen on the other four", "its regret there"], rows)


def _retrospective_pairs(data: Path) -> str:
    r = _retrospective()
    rows = [
        [f"{p.a} − {p.b}", f"{p.wins} / {p.losses} / {p.ties}", f"{p.mean:+.2f}",
         f"[{p.ci_low:+.2f}, {p.ci_high:+.2f}]", f"{p.p_t:.3f}", f"{p.p_sign:.3f}"]
        for p in r.pairs.itertuples()
    ]  # fmt: skip
    head = ["comparison", "wins / losses / ties", "mean (points)", "95% CI", "paired t p"]
    return _md([*head, "sign test p"], rows)


def _source_norm_frame(data: Path) -> pd.DataFrame:
    import pandas as pd

    paths = sorted(data.glob("delta-source-norm*.csv"))
    if not paths:
        raise ConfigError(f"expected the DELTA rerun's data in {data}, found none")
    frames = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in paths]
    return pd.concat(frames, ignore_index=True)


def _label(method: str, norm: str) -> str:
    return f"{method} ({norm})" if isinstance(norm, str) and norm else method


def _versus(acc: pd.Series, ref: pd.Series | None) -> str:
    """Paired difference ``acc - ref`` over shared seeds with its 95% t interval."""
    from .stats import paired_difference

    seeds = sorted(set(acc.index) & set(ref.index)) if ref is not None else []
    if ref is None or len(seeds) < 2:
        return "–"
    d = paired_difference(acc[seeds], ref[seeds])
    return f"{d.mean:+.2f} [{d.ci_low:+.2f}, {d.ci_high:+.2f}]"


def _source_norm_runs(data: Path) -> str:
    df = _source_norm_frame(data)
    df["arm"] = [_label(m, n) for m, n in zip(df["method"], df["source_norm"])]
    df["task"] = [f"{m}, {d} {r}" for m, d, r in zip(df["model"], df["dataset"], df["rate"])]
    rows = []
    for task, group in df.groupby("task", sort=False):
        arms = {
            a: r.set_index("seed")["test_accuracy"] for a, r in group.groupby("arm", sort=False)
        }

        for arm, runs in group.groupby("arm", sort=False):
            acc = arms[arm]
            ratio = (runs["first_loss_delta"] / runs["first_loss_task"]).median()
            consistent = arm.replace("(mismatched)", "(batch)")
            rows.append(
                [str(task), arm, str(len(acc)), _num(float(acc.mean())),
                 _num(float(acc.std(ddof=1)) if len(acc) > 1 else math.nan),
                 _versus(acc, arms.get("l2+bss")) if arm != "l2+bss" else "–",
                 _versus(acc, arms.get(consistent)) if consistent != arm else "–",
                 "–" if math.isnan(ratio) else f"{ratio:.3g}"]
            )  # fmt: skip
    head = ["task", "method (source_norm)", "seeds", "test acc. %", "seed sd", "− l2+bss, 95% CI"]
    head += ["− batch mode, 95% CI", "DELTA term / task loss, first 50 iterations"]
    return _md(head, rows) + "\n" + _source_norm_pooled(df)


def _source_norm_pooled(df: pd.DataFrame) -> str:
    """Per arm, over the pre-trained tasks (the random-init model is left out: the question
    is transfer): the mean of its per-task mean differences to l2+bss, with a t interval
    over tasks (each task one observation: seeds are nested in tasks)."""
    from .stats import paired_difference
    from .suites import RANDOM_LITE0

    rows = []
    pretrained = df[df["model"] != RANDOM_LITE0]
    for arm in [a for a in dict.fromkeys(pretrained["arm"]) if a != "l2+bss"]:
        diffs = []
        for _, group in pretrained.groupby("task", sort=False):
            mine = group[group["arm"] == arm].set_index("seed")["test_accuracy"]
            ref = group[group["arm"] == "l2+bss"].set_index("seed")["test_accuracy"]
            seeds = sorted(set(mine.index) & set(ref.index))
            if seeds:
                diffs.append(float((mine[seeds] - ref[seeds]).mean()))
        if len(diffs) < 2:
            continue
        d = paired_difference(diffs, [0.0] * len(diffs))  # one-sample t over tasks
        rows.append(
            [arm, str(d.n), f"{d.wins} of {d.n}", f"{d.mean:+.2f}",
             f"[{d.ci_low:+.2f}, {d.ci_high:+.2f}]"]
        )  # fmt: skip
    head = ["method (source_norm)", "pre-trained tasks", "above l2+bss", "mean over tasks − l2+bss"]
    return _md([*head, "95% CI over tasks"], rows)


def _quick(data: Path, table: str) -> pd.DataFrame:
    import pandas as pd

    path = data / "quick" / f"{table}.csv"
    if not path.is_file():
        raise ConfigError(f"expected the quick suite's {table}.csv at {path}, found none")
    return pd.read_csv(path)


def _quick_policies(data: Path) -> str:
    pol = _quick(data, "policies")
    rows = [
        [str(p.policy), _num(p.regret), _num(p.max_regret), f"{100 * p.share_within:.0f}%"]
        for p in pol.itertuples()
    ]
    return _md(["policy", "mean regret (points)", "max regret", "share within 0.5"], rows)


def _quick_tasks(data: Path) -> str:
    tasks = _quick(data, "tasks")
    methods = [c.removeprefix("full ") for c in tasks.columns if c.startswith("full ")]
    methods = [m for m in methods if f"pilot {m}" in tasks.columns]
    rows = [
        [str(r["task"]),
         *[f"{_num(r[f'pilot {m}'], 1)} / {_num(r[f'full {m}'], 1)}" for m in methods],
         f"{r['advice']} ({r['outcome']}, {r['confidence']})"]
        for r in tasks.to_dict(orient="records")
    ]  # fmt: skip
    head = ["task", *[f"{m} pilot / full" for m in methods], "advice (outcome, confidence)"]
    return _md(head, rows)


#: Training-split sizes behind the suites' validation shares (the pilots carve ``val`` of
#: the training split before sampling, then evaluate at most ``pilot_eval_max`` images).
#: Fashion-MNIST: 60,000 (its 4 confusable classes 24,000); digits: the 1,348 of the
#: toolkit's fixed split; the paper's datasets: their official training splits.
TRAIN_SIZES = {
    "fashion-mnist": 60000,
    "confusable": 24000,
    "digits": 1348,
    "cub200": 5994,
    "stanford-dogs": 12000,
    "stanford-cars": 8144,
    "oxford-pets": 3680,
    "fgvc-aircraft": 6667,
}
#: Table 2's datasets (the suite itself needs ``DATA`` set to be built).
_TABLE2 = ("cub200", "stanford-dogs", "stanford-cars", "oxford-pets", "fgvc-aircraft")


def _n_val(data: str, val: str, eval_max: int | None) -> int:
    key = "confusable" if "[" in data else data.partition(":")[0]
    share = float(val.rstrip("%")) / 100
    n = round(share * TRAIN_SIZES[key])
    return n if eval_max is None else min(n, eval_max)


def _share(p: float) -> str:
    return "< 1%" if p < 0.005 else f"{100 * p:.0f}%"


def _suite_power(data: Path) -> str:
    from ..report.recommend import ALPHA, SEED_SD_FLOOR, detection_power, difference_floor
    from .suites import get_suite

    rows = []
    quick, cpu = get_suite("quick"), get_suite("cpu")
    plans = [
        (s.name, [_n_val(t.data, s.val, s.pilot_eval_max) for t in s.tasks], len(s.pilot_seeds),
         len(s.methods)) for s in (quick, cpu)
    ]  # fmt: skip
    plans.append(("table2", [_n_val(d, "10%", None) for d in _TABLE2], 3, len(cpu.methods)))
    for name, sizes, seeds, k in plans:
        cells = []
        for n_val in (min(sizes), max(sizes)):
            sd = difference_floor(0.8, 0.8, n_val, SEED_SD_FLOOR)
            rule = sd if seeds == 1 else difference_floor(0.8, 0.8, n_val, 0.0)
            cells.append(
                [_share(detection_power(d, seeds, k, alpha=ALPHA, sd=sd, floor=rule))
                 for d in (0.01, 0.02)]
            )  # fmt: skip
        span = f"{min(sizes)}–{max(sizes)}" if min(sizes) != max(sizes) else str(min(sizes))
        rows.append(
            [name, str(seeds), str(k), span, f"{cells[0][0]} – {cells[1][0]}",
             f"{cells[0][1]} – {cells[1][1]}"]
        )  # fmt: skip
    head = ["suite", "pilot seeds", "candidates", "validation images", "power, 1 point"]
    return _md([*head, "power, 2 points"], rows)


#: Block name -> renderer (reads ``data``, the folder of committed files).
BLOCKS: dict[str, Callable[[Path], str]] = {
    "retrospective-policies": _retrospective_policies,
    "retrospective-lodo": _retrospective_lodo,
    "retrospective-pairs": _retrospective_pairs,
    "delta-source-norm": _source_norm_runs,
    "quick-policies": _quick_policies,
    "quick-tasks": _quick_tasks,
    "suite-power": _suite_power,
}


def render_blocks(data: str | Path, names: list[str] | None = None) -> dict[str, str]:
    """Markdown of each block (all of :data:`BLOCKS` unless ``names``)."""
    unknown = sorted(set(names or []) - set(BLOCKS))
    if unknown:
        raise ConfigError(f"expected blocks among {', '.join(BLOCKS)}, found {unknown[0]!r}")
    return {n: BLOCKS[n](Path(data)) for n in (names or list(BLOCKS))}


def update_page(page: str | Path, data: str | Path | None = None, *, check: bool = False) -> bool:
    """Rewrite the generated blocks of ``page`` from ``data`` (default: ``page``'s folder
    ``validation/data``); with ``check``, write nothing. Returns whether it was up to date.

    Raises:
        ConfigError: the page has no generated block, or names an unknown one.
    """
    from .._io import atomic_write_text

    path = Path(page)
    text = path.read_text()
    names = [m["name"] for m in _BLOCK.finditer(text)]
    if not names:
        raise ConfigError(f"expected '<!-- generated: NAME -->' blocks in {path}, found none")
    folder = Path(data) if data is not None else path.parent / "validation" / "data"
    blocks = render_blocks(folder, names)
    new = _BLOCK.sub(lambda m: m[1] + blocks[m["name"]] + m[4], text)
    if new != text and not check:
        atomic_write_text(path, new)
    return new == text
