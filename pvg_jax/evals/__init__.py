"""Evaluations of a finished (or running) game's workdir (METHOD 1.3 and 2)."""
