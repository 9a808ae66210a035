"""One LASER cell, as a sweep job runs it: truncate one matrix, evaluate the copy.

Kept apart from :mod:`spectral_probe.training.laser` (the grid and its runner, which uses the
sweep executors) so that :func:`spectral_probe.training.sweep.run_cell` can hand a LASER cell
here without an import cycle.
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._io import write_json
from ..errors import ConfigError

__all__ = ["LASER_KEY", "perplexity", "run_laser_cell"]

#: the key that marks a sweep cell as a LASER cell (``run_cell`` dispatches on it)
LASER_KEY = "laser"


def perplexity(model_dir: str | Path, text_file: str | Path, *, max_length: int = 512) -> float:
    """Perplexity of a causal LM on a text file: :math:`\\exp` of the mean next-token loss.

    The text is tokenised once with the model's tokenizer and cut into consecutive windows of
    ``max_length`` tokens (no overlap); every token but each window's first is predicted once.
    """
    import torch
    import transformers as tr

    tokenizer = tr.AutoTokenizer.from_pretrained(model_dir)
    model = tr.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = tokenizer(Path(text_file).read_text(encoding="utf-8"), return_tensors="pt")["input_ids"]
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, ids.shape[1], max_length):
            window = ids[:, start : start + max_length]
            if window.shape[1] < 2:
                continue
            loss = model(window, labels=window).loss  # mean over window - 1 predictions
            total += float(loss) * (window.shape[1] - 1)
            count += window.shape[1] - 1
    if count == 0:
        raise ConfigError(f"expected at least two tokens in {text_file}, found {ids.shape[1]}")
    return math.exp(total / count)


def _command_metric(command: str, model_dir: Path) -> float:
    argv = [part.replace("{model}", str(model_dir)) for part in shlex.split(command)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise ConfigError(
            f"--eval-command exited with {done.returncode}: {tail[-1] if tail else 'no output'}"
        )
    numbers = re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", done.stdout)
    if not numbers:
        raise ConfigError(
            f"expected a number in --eval-command's stdout, found {done.stdout[-200:]!r}"
        )
    return float(numbers[-1])


def run_laser_cell(config: Mapping[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Run one cell (in a job process): truncate, evaluate, write ``final.json``."""
    from ..analysis.truncate import truncate_model

    cell = dict(config[LASER_KEY])
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = Path(cell["model"])
    target = model
    if cell["layer"] is not None:
        target = run_dir / "model"
        if target.exists():  # left by an interrupted try
            shutil.rmtree(target)
        pattern = rf"(^|\.)layers\.{int(cell['layer'])}\.{re.escape(str(cell['type']))}\.weight$"
        truncate_model(model, target, layers=pattern, keep=float(cell["keep"]))
    try:
        if cell["eval"] is not None:
            metric = perplexity(target, cell["eval"], max_length=int(cell["max_length"]))
            name = "perplexity"
        else:
            metric = _command_metric(str(cell["command"]), target)
            name = "metric"
    finally:
        if target != model and not cell.get("keep_models"):
            shutil.rmtree(target, ignore_errors=True)
    outcome = {"run_id": config.get("run_id", run_dir.name), "status": "finished", name: metric}
    write_json(run_dir / "final.json", {**outcome, "cell": cell, "metric_name": name})
    return outcome
