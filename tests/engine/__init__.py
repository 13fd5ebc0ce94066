"""Tests of the sync engine: push, pull, apply, conflicts on push, crashes."""
