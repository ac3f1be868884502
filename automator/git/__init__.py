"""git stage."""
