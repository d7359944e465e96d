"""Experiment specs shipped with vfiobench (TOML files)."""
