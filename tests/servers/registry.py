"""Fixtures that start Debian's docker-registry (distribution 2.8) on loopback."""
