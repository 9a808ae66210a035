"""``validate``: run a suite (resumably), score every policy, write JSON, CSV and an HTML summary."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._io import check_writable_dir, write_json
from .analyse import ValidationResult, analyse_suite
from .harness import run_suite
from .suites import Suite
from .summary import write_summary_html

__all__ = ["validate"]


def validate(
    suite: Suite,
    out: str | Path,
    *,
    executor: str = "inline",
    max_parallel: int = 1,
    device: str = "auto",
    slurm: dict[str, Any] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    stage: Callable[[str], None] | None = None,
    command: str = "",
) -> ValidationResult:
    """Run every cell of ``suite`` not yet finished under ``out/runs``, then write under ``out``:
    ``results.json``, ``policies.csv``, ``signals.csv``, ``tasks.csv``, ``regrets.csv``,
    ``runs.csv``, ``summary.html``, ``summary.md`` and ``figures/``.

    Raises:
        OutputError: ``out`` cannot be written.
        SpectralProbeError: a cell failed or was interrupted (re-run to continue).
    """
    say = stage or (lambda text: None)
    out = check_writable_dir(out)
    say(f"runs of suite {suite.name}: pilots and full fine-tunes")
    run_suite(suite, out, executor=executor, max_parallel=max_parallel, device=device, slurm=slurm,
              progress=progress)  # fmt: skip
    say("spectral signals and scores")
    result = analyse_suite(suite, out, device=device)
    commands = [
        command
        or f"spectral-probe validate --suite {shlex.quote(suite.name)} --out {shlex.quote(str(out))}"
    ]
    result.to_json(out / "results.json")
    result.to_csv(out)
    write_json(out / "config.json", {"suite": suite.to_dict(), "executor": executor, "device": device,
                                     "commands": commands})  # fmt: skip
    write_summary_html(result, out, commands)
    return result
