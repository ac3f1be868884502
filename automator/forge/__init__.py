"""forge stage."""
