"""Feast glue: the only package that imports Feast."""
