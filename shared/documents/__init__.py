"""Document kinds and templates (TOML): ``kinds.toml`` and one template file per case type."""
