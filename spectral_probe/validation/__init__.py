"""Does following the report's advice beat a fixed default? Regret, rank agreement, suites.

Example:
    >>> from spectral_probe.validation import retrospective
    >>> retrospective().best_policy
    'always DELTA+BSS'
"""

from .analyse import ValidationResult, analyse_suite
from .retrospective import RetrospectiveResult, retrospective
from .stats import kendall_tau, regret, regret_summary, weighted_tau
from .suites import Suite, Task, get_suite, list_suites
from .validate import validate

__all__ = [
    "RetrospectiveResult",
    "Suite",
    "Task",
    "ValidationResult",
    "analyse_suite",
    "get_suite",
    "kendall_tau",
    "list_suites",
    "regret",
    "regret_summary",
    "retrospective",
    "validate",
    "weighted_tau",
]
