"""Tests of the demo and the developer tools."""
