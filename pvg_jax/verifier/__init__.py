"""The verifier's objective (METHOD.md 1.1)."""
