"""Generators of small on-disk fixtures for the tests (importable as ``_fixtures``)."""
