"""Does following the report's advice beat a fixed default? Regret, rank agreement, suites.

Example:
    >>> from spectral_probe.validation import retrospective
    >>> retrospective().best_policy
    'always DELTA+BSS'
"""

from .retrospective import RetrospectiveResult, retrospective
from .stats import kendall_tau, regret, regret_summary, weighted_tau

__all__ = [
    "RetrospectiveResult",
    "retrospective",
    "kendall_tau",
    "weighted_tau",
    "regret",
    "regret_summary",
]
