"""Loopline: real-time machine learning with the loop closed."""

__version__ = "0.1.0"
