"""Debate (Anthropic 2023; Khan et al. 2024; Arnesen et al. 2024) on the shared game
machinery: the reading world (pvg_jax.worlds.reading), PPO of pvg_jax.rl, the round loop
and checkpoints of pvg_jax.games."""
