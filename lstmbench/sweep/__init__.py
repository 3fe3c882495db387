"""Sweeps: experiment specs, the results store, and executors that run them."""
