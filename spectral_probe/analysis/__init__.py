"""Analyses that turn models (and data) into result objects of tidy tables."""

from .weights import SUMMARY_COLUMNS, WeightComparison, compare_weights

__all__ = ["WeightComparison", "compare_weights", "SUMMARY_COLUMNS"]
