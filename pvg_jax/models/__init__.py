"""Flax models of both players, their named sizes and the KV-cache sampler."""
