"""The options of ``spectral-probe compare-weights``, declared once (Typer ``Annotated`` types)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import Executor


class Vectors(str, Enum):
    left = "left"
    right = "right"


class Method(str, Enum):
    gram = "gram"
    svd = "svd"


def _opt(text: str, *names: str, **kw: Any) -> Any:
    return typer.Option(*names, help=text, **kw)


ModelA = Annotated[
    str, typer.Argument(help="Reference (pre-trained) model spec or checkpoint path.")
]
ModelsB = Annotated[
    list[str],
    typer.Argument(
        metavar="MODEL_B...",
        help="Compared (fine-tuned) model spec or checkpoint path; several fine-tunes of MODEL_A give one row each.",
    ),
]
ArchOpt = Annotated[
    str | None, _opt("Architecture spec for state-dict files without a sidecar (both models).")
]
ArchAOpt = Annotated[str | None, _opt("Architecture spec for MODEL_A only.")]
ArchBOpt = Annotated[str | None, _opt("Architecture spec for MODEL_B only.")]
SplitGroupsOpt = Annotated[bool, _opt("Compare grouped convolutions group by group.")]
TopOpt = Annotated[
    int | None,
    _opt(
        "Only the leading K singular triplets per matrix, by randomized SVD with power iterations (residual bound per layer: top_residual).",
        "--top",
    ),
]
SkipNonfiniteOpt = Annotated[
    bool,
    _opt(
        "List and skip layers whose weights hold NaN/Inf (weight files; default: exit 2 naming the tensor).",
        "--skip-nonfinite",
    ),
]
VectorsOpt = Annotated[Vectors, _opt("Corresponding angles of left or right singular vectors.")]
TopKOpt = Annotated[int, _opt("Size of the leading subspaces compared by principal angles.")]
ThresholdOpt = Annotated[float, _opt("first_below: first index whose |cos| is below this.")]
WindowOpt = Annotated[
    float,
    _opt(
        "Spectral window for cos_window: singular values within this fraction of sigma_i count as near-equal."
    ),
]
MethodOpt = Annotated[Method, _opt("gram (fast, float64) or svd (LAPACK).")]
DeviceOpt = Annotated[str, _opt("auto, cpu or cuda.")]
CsvOpt = Annotated[bool, _opt("Print the per-layer summary as CSV on stdout.", "--csv")]
PlotLayerOpt = Annotated[
    list[str] | None,
    _opt(
        "Layer for the angle/spectrum figures (repeatable) [default: first conv, first block, last block].",
        "--plot-layer",
    ),
]
FiguresOpt = Annotated[bool, _opt("Write figures into --out.")]
SimilarityLayerOpt = Annotated[
    str | None, _opt("Layer of the |cos| similarity figure [default: the one with most intruders].")
]
EsdOpt = Annotated[
    bool,
    _opt(
        "Also WeightWatcher's heavy-tailed ESD metrics (alpha...) of both models, and delta alpha.",
        "--esd",
    ),
]
EsdLayerOpt = Annotated[
    list[str] | None,
    _opt(
        "Layer for the ESD-with-fit figure (repeatable) [default: first, lowest and highest alpha, last].",
        "--esd-layer",
    ),
]
IntruderKOpt = Annotated[
    int,
    _opt(
        "Leading singular vectors of MODEL_B examined for intruder dimensions (peft's top_k); 0: no intruders or update structure.",
        "--intruder-k",
    ),
]
IntruderEpsilonOpt = Annotated[
    float,
    _opt(
        "Intruder: largest |cos| with every singular vector of MODEL_A below this (peft's threshold_epsilon).",
        "--intruder-epsilon",
    ),
]
SubspaceRankOpt = Annotated[
    int | None,
    _opt(
        "r of MODEL_A's top-r/bottom-r subspaces for the update's energy shares [default: the adapter's rank, else 8].",
        "--subspace-rank",
    ),
]
ScaleIntrudersOpt = Annotated[
    float | None,
    _opt(
        "Scale MODEL_B's intruder components by LAMBDA (peft's mitigation uses 0.75) and write the result (--write-merged, --write-adapter).",
        "--scale-intruders",
        metavar="LAMBDA",
    ),
]
WriteMergedOpt = Annotated[
    Path | None,
    _opt(
        "With --scale-intruders: a new safetensors model directory (an adapter merged into MODEL_A).",
        "--write-merged",
    ),
]
WriteAdapterOpt = Annotated[
    Path | None,
    _opt(
        "With --scale-intruders and an adapter as MODEL_B: a new peft adapter directory with refitted factors.",
        "--write-adapter",
    ),
]
ShardsOpt = Annotated[
    int | None,
    _opt(
        "Split the layers of weight files into N jobs of about equal cost (--executor); the merged result equals a single-process run.",
        "--shards",
        show_default=False,
    ),
]
ExecutorOpt = Annotated[
    Executor,  # type: ignore[valid-type]
    _opt(
        "Where the --shards jobs run: local (processes), slurm (a job array) or inline (this process)."
    ),
]
MaxParallelOpt = Annotated[
    int | None,
    _opt(
        "--shards jobs at once (local) or the SLURM array's parallelism [default: CPU count; slurm: all].",
        show_default=False,
    ),
]
SlurmOpt = Annotated[
    list[str] | None,
    _opt(
        "SLURM parameter KEY=VALUE for --shards, repeatable (as sweep --slurm).",
        "--slurm",
        show_default=False,
    ),
]
