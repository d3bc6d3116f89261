"""Double-blind witness identification (辨认): lineups, the procedure per identifier, the record."""
