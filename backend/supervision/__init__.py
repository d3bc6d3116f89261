"""Supervision: the early-warning rules engine (预警), its warnings and the change feed."""
