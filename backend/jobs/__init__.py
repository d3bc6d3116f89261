"""Periodic jobs (sweeps, clean-ups): registered by the domains, run by a scheduler."""
