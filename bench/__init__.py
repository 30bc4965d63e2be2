"""Benchmarks for canfar-widgets: ``python -m bench`` (``--fast`` for the CI smoke run)."""
