"""Tests of least privilege: the roles of a deployment, and what one PC or the application cannot do."""
