"""Tests of the Sumehr publisher, the KMEHR documents and the HUB client."""
