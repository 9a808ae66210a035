"""plot_scores_by_depth draws one line per matrix type and marks exactly the selected ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spectral_probe.analysis.select import select_top
from spectral_probe.plotting import plot_scores_by_depth


def test_lines_and_markers():
    rng = np.random.default_rng(0)
    types = ("mlp.down_proj", "self_attn.q_proj")
    rows = [
        {"name": f"model.layers.{i}.{t}", "type": t, "layer": i, "rows": 8, "cols": 8,
         "score": float(rng.random())}
        for i in range(6)
        for t in types
    ]  # fmt: skip
    rows += [
        {"name": f"model.layers.{i}.input_layernorm", "type": "input_layernorm", "layer": i,
         "rows": 1, "cols": 8, "score": 1.0}
        for i in range(6)
    ]  # fmt: skip
    rows.append({"name": "lm_head", "type": "lm_head", "layer": None, "rows": 8, "cols": 8,
                 "score": 0.5})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["layer"] = frame["layer"].astype("Int64")
    result = select_top(frame, 50, meta={"score": "snr"})
    fig = plot_scores_by_depth(result)
    ax = fig.axes[0]
    assert sorted(line.get_label() for line in ax.get_lines()) == [
        "mlp.down_proj",
        "self_attn.q_proj",
    ]
    marked = sum(len(c.get_offsets()) for c in ax.collections)
    assert marked == 6  # 3 of 6 per matrix type; norms (1-D) and lm_head (no block) left out
    assert "top 50% per type" in ax.get_title()
