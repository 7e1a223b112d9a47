"""Rollout: which model version may serve. The promotion gate (``gate``), and the live trial of
its challenger in shadow or canary, decided by ``rule`` and carried out by ``controller``."""
