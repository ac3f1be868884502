"""sync stage."""
