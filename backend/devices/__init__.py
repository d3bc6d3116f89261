"""Enrolled field devices and their Ed25519 keys (checklist C2)."""
