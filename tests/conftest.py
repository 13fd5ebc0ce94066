"""Shared test helpers (fixtures live in the tests/fix_*.py plugins)."""
