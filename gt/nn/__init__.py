"""Neural-network modules (filled in below)."""
