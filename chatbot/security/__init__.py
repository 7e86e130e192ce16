"""Secrets at rest: the master keyring and authenticated encryption bound to owner and field."""
