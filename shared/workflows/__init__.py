"""Workflow definitions (TOML), one file per case type."""
