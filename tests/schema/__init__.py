"""Tests of the ccsync schema: install, upgrade, uninstall, capture triggers."""
