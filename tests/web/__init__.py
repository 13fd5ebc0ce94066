"""Tests of the admin panel: views, API, and the browser end to end."""
