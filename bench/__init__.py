"""Benchmarks against this machine's own ceilings: `make bench` (see README, Benchmarks)."""
