"""Services of the field client: local store, outbox, device key, sync worker, forms."""
