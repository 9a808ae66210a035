"""Figures and a self-contained HTML summary of a validation (plots embedded as PNG data URIs)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import atomic_write_text
from .harness import SIGNALS

if TYPE_CHECKING:
    import pandas as pd

    from .analyse import ValidationResult

__all__ = [
    "plot_pilot_vs_full",
    "plot_policy_regret",
    "summary_markdown",
    "write_summary_html",
]


def plot_policy_regret(policies: pd.DataFrame, ax: Any = None) -> Any:
    """Mean regret of each policy (bars) with its maximum (ticks), in accuracy points."""
    from ..plotting import new_axes

    fig, ax = new_axes(ax, (6, 0.35 * len(policies) + 1.2))
    y = range(len(policies))
    colors = ["tab:green" if p == "advice" else "tab:gray" for p in policies["policy"]]
    ax.barh(list(y), policies["regret"], color=colors)
    ax.plot(policies["max_regret"], list(y), "k|", markersize=12)
    ax.set_yticks(list(y), list(policies["policy"]))
    ax.invert_yaxis()
    ax.set_xlabel(
        "regret against the best candidate (test-accuracy points)\nbars: mean over tasks; ticks: max"
    )
    return fig


def plot_pilot_vs_full(tasks: pd.DataFrame, methods: list[str], ax: Any = None) -> Any:
    """Mean pilot validation accuracy against mean full-run test accuracy, per task and method."""
    from ..plotting import new_axes

    fig, ax = new_axes(ax, (5, 4.5))
    for method in methods:
        if f"pilot {method}" in tasks and f"full {method}" in tasks:
            ax.scatter(tasks[f"pilot {method}"], tasks[f"full {method}"], label=method, s=22)
    ax.set_xlabel("pilot validation accuracy (%)")
    ax.set_ylabel("full-run test accuracy (%)")
    ax.legend(fontsize=7)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _table(df: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for record in df[columns].to_dict(orient="records"):
        cells = []
        for c in columns:
            v = record[c]
            cells.append(
                f"<td>{v:.3f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_summary_html(
    result: ValidationResult, directory: str | Path, commands: list[str]
) -> dict[str, Path]:
    """``summary.html`` (self-contained), ``summary.md`` and ``figures/*.png`` in ``directory``."""
    from .._io import atomic_write_bytes

    directory = Path(directory)
    methods = list(result.suite.get("methods", []))
    pngs = {
        "policy_regret": _png(plot_policy_regret(result.policies)),
        "pilot_vs_full": _png(plot_pilot_vs_full(result.tasks, methods)),
    }
    paths = {
        name: atomic_write_bytes(directory / "figures" / f"{name}.png", data)
        for name, data in pngs.items()
    }
    images = "".join(
        f'<figure><img alt="{n}" src="data:image/png;base64,{base64.b64encode(d).decode()}"></figure>'
        for n, d in pngs.items()
    )
    task_cols = [c for c in ["task", "advice", "outcome", "best_pilot", "oracle_method", "kendall_tau",
                             "weighted_tau", *SIGNALS, "gain_bss", "gain_sp"]
                 if c in result.tasks]  # fmt: skip
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>spectral-probe validation</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse;font-size:90%}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>Validation: suite {html.escape(str(result.suite.get("name")))}</h1>
<p>Regret: test-accuracy points lost against the best candidate of each task (full runs). The lowest-regret
fixed policy is <strong>{html.escape(result.best_fixed_policy)}</strong>.</p>
<h2>Policies</h2>{_table(result.policies, list(result.policies.columns))}
<h2>Spectral signals</h2>{_table(result.signals, list(result.signals.columns))}
<h2>Figures</h2>{images}
<h2>Tasks</h2>{_table(result.tasks, task_cols) if len(result.tasks) else "<p>no finished task</p>"}
<h2>Reproduce</h2><pre>{html.escape(chr(10).join(commands))}</pre>
</body></html>"""
    paths["html"] = atomic_write_text(directory / "summary.html", body)
    paths["markdown"] = atomic_write_text(
        directory / "summary.md", summary_markdown(result, commands)
    )
    return paths


def _num(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.{digits}f}"
    return str(value)


def _md(header: list[str], rows: list[list[str]]) -> str:
    import pandas as pd

    from ..report.reproduction_page import markdown_table

    return markdown_table(pd.DataFrame(rows, columns=header))


def _policy_rows(policies: pd.DataFrame) -> list[list[str]]:
    return [
        [
            str(r["policy"]),
            _num(r["regret"]),
            _num(r["max_regret"]),
            f"{100 * r['share_within']:.0f}%",
            _num(r["kendall_tau"]),
        ]
        for r in policies.to_dict(orient="records")
    ]


def _task_rows(tasks: pd.DataFrame, methods: list[str], signals: list[str]) -> list[list[str]]:
    rows = []
    for r in tasks.to_dict(orient="records"):
        accs = [f"{_num(r[f'pilot {m}'], 1)} / {_num(r[f'full {m}'], 1)}" for m in methods]
        advice = f"{r['advice']} ({r['outcome']}, {r['confidence']})"
        values = [_num(r[c], 3) for c in signals]
        rows.append(
            [
                str(r["task"]),
                *accs,
                advice,
                str(r["oracle_method"]),
                _num(r["full_seed_sd"]),
                _num(r["kendall_tau"]),
                *values,
            ]
        )
    return rows


def _signal_rows(signals: pd.DataFrame) -> list[list[str]]:
    return [
        [str(r["signal"]), str(r["gain"]), str(r["n_tasks"]), _num(r["kendall_tau"]),
         _num(r["weighted_tau"]), _num(r["regret"])]
        for r in signals.to_dict(orient="records")
    ]  # fmt: skip


def summary_markdown(result: ValidationResult, commands: list[str]) -> str:
    """The validation's tables as Markdown (accuracies in %, regret in points), for the docs."""
    methods = list(result.suite.get("methods", []))
    policy_head = [
        "policy",
        "mean regret (points)",
        "max regret",
        "share within 0.5",
        "pilot-vs-full τ",
    ]
    parts = [
        f"# Validation: suite {result.suite.get('name')}",
        "Regret: test-accuracy points lost against the best candidate of each task (mean of the"
        f" full runs). Lowest-regret fixed policy: **{result.best_fixed_policy or '–'}**.",
        _md(policy_head, _policy_rows(result.policies)),
    ]
    if len(result.tasks):
        signals = [c for c in SIGNALS if c in result.tasks]
        head = ["task", *[f"{m} pilot / full" for m in methods], "advice (outcome, confidence)"]
        head += ["oracle", "seed sd", "τ", *signals]
        parts.append(_md(head, _task_rows(result.tasks, methods, signals)))
    signal_head = [
        "signal",
        "gain",
        "tasks",
        "Kendall τ",
        "weighted τ",
        "regret of the former rule",
    ]
    parts.append(_md(signal_head, _signal_rows(result.signals)))
    parts.append("```\n" + "\n".join(commands) + "\n```")
    return "\n\n".join(parts) + "\n"
