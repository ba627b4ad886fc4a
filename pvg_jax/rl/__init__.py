"""The prover's reinforcement learning: rewards (METHOD 1.2), GAE and PPO losses."""
