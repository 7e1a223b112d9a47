"""Loaders that turn real reference datasets (shipped inside packages) into Feast sources."""
