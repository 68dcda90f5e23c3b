"""Engines turn a scenario into a ledger."""
