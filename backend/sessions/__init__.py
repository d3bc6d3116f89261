"""Remote sessions: identification, interrogation and lawyer meetings run across sites."""
