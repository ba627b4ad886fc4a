"""Anil et al. (2021)'s prover-verifier games on toy tasks (METHOD 4): tasks, players,
gradient-play formulations, the completeness/soundness audit, the run loop and its report.

    python -m pvg_jax.main --config configs/anil.py --workdir runs/anil
"""
