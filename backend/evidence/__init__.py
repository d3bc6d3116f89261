"""Evidence, its store and chain of custody."""
