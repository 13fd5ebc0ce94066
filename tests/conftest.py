"""Shared test helpers (fixtures live in the tests/fix_*.py plugins)."""


def pytest_addoption(parser):
    parser.addoption("--soak", type=float, default=0, metavar="MINUTES",
                     help="run the randomized differential test (tests/engine/test_differential.py) this long")
