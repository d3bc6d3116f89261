"""Code both sides use: enums, the case workflows as data, and the typed API client."""
