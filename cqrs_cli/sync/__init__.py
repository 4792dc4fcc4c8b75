"""Sync: the only bridge from the journal to the projection."""
