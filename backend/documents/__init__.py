"""Documents, signatures and printable PDFs."""
