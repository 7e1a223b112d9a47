"""Watching a model in production: training-serving skew (``skew``)."""
