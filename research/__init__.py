"""Pilots, sweeps and one-off studies behind docs/experiments.md; never imported by the product or its tests."""
