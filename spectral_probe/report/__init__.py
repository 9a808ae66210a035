"""The diagnostic report: pilot fine-tunes, spectral evidence and a recommendation.

Example:
    >>> from spectral_probe.report import ReportSettings, build_report, render_report
    >>> settings = ReportSettings(model="bundled:efficientnet_lite0", data="fashion-mnist", rates=("1%",))
    >>> report = build_report(settings, "report/")  # doctest: +SKIP
    >>> render_report(report, "report/")["html"]  # doctest: +SKIP
    PosixPath('report/index.html')
"""

from .build import Report, build_report, check_pilot_data
from .evidence import Evidence, gather_evidence, top_layers
from .figures import ReportFigure, report_figures
from .pilot import PilotRuns, pilot_configs, run_pilots
from .recommend import PilotScore, Recommendation, SpectralEvidence, recommend, score_pilots
from .render import caveats, render_report
from .settings import DEFAULT_METHODS, ReportSettings

__all__ = [
    "ReportSettings",
    "DEFAULT_METHODS",
    "build_report",
    "render_report",
    "Report",
    "check_pilot_data",
    "Evidence",
    "gather_evidence",
    "top_layers",
    "PilotRuns",
    "pilot_configs",
    "run_pilots",
    "PilotScore",
    "SpectralEvidence",
    "Recommendation",
    "score_pilots",
    "recommend",
    "ReportFigure",
    "report_figures",
    "caveats",
]
