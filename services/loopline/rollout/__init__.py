"""Rollout: which model version may serve. The promotion gate now; shadow and canary to come."""
