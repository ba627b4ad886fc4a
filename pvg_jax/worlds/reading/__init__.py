"""The reading world of the debate game (pvg_jax.games.debate): passages, questions, quotes."""
