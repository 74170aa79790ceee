"""Sweeps over transactions and runs: crash recovery and the janitor, each one safe pass."""
