r"""Anil et al.'s prover-verifier games on two toy tasks (METHOD 4): every formulation.

    python -m pvg_jax.main --config configs/anil.py --workdir runs/anil      (<= 10 min, CPU)
    python -m pvg_jax.main --config configs/anil.py:smoke --workdir /tmp/anil   (~1 min)
    pvg-report --workdir runs/anil                     # runs/anil/report/report.md

For each task (binary erasure channel, FindThePlus) and formulation (simultaneous,
prover-leading and verifier-leading sequential play with a k-step or unrolled follower) it
trains `seeds` games at once (vmapped), audits each verifier's soundness with freshly
trained attackers, and writes summary.json with completeness and soundness error per
formulation (mean and 95% t-interval over seeds). Task and model parameters are ours
(pvg_jax/anil/tasks.py); the paper's sizes were not available.
"""

import ml_collections

from pvg_jax.anil import game


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg: "" or "smoke" (the same path at CI size)."""
  if arg not in ("", "smoke"):
    raise ValueError(f"configs/anil.py:{arg}: the only option is 'smoke'")
  smoke = arg == "smoke"
  c = ml_collections.ConfigDict()
  c.game_type = "anil"
  c.seed = 0                                # data seed; games use seeds seed..seed+seeds-1
  c.seeds = 2 if smoke else 3               # vmapped: the seed table costs about one run
  c.tasks = ("bec", "ftp")
  c.formulations = game.FORMULATIONS

  c.bec = b = ml_collections.ConfigDict()   # binary erasure channel
  b.n = 16                                  # bits of the original string
  b.run = 3                                 # claim: x contains `run` consecutive ones
  b.density = 0.3                           # P(bit = 1)
  b.erasure = 0.25                          # P(a bit is erased in the verifier's copy)
  c.ftp = f = ml_collections.ConfigDict()   # FindThePlus
  f.size = 8                                # image side (36 plus centres)
  f.density = 0.3                           # P(noise pixel on)

  c.data = d = ml_collections.ConfigDict()
  d.train = 1024 if smoke else 8192         # balanced instances per task
  d.test = 512 if smoke else 4096           # held-out (a different seed stream)

  c.players = p = ml_collections.ConfigDict()
  p.prover_hidden = 32                      # the prover sees everything and is larger
  p.verifier_hidden = 16                    # the verifier sees one window

  c.game = g = ml_collections.ConfigDict()
  g.formulation = ""                        # set per run from `formulations`
  g.message = "discrete"                    # discrete (straight-through) | continuous
  g.temperature = 1.0                       # softmax temperature of the pointer
  g.steps = 150 if smoke else 800           # outer steps
  g.chunk = 50 if smoke else 200            # outer steps per jitted call and checkpoint
  g.log_every = 10                          # outer steps per metrics record (divides chunk)
  g.batch_size = 128                        # balanced instances per outer step
  g.lr = 3e-3                               # Adam, leader (both players if simultaneous)
  g.inner_steps = 4                         # k: follower SGD steps per outer step
  g.inner_lr = 0.3                          # follower SGD rate

  c.audit = a = ml_collections.ConfigDict()   # soundness audit of each trained verifier
  a.restarts = 2 if smoke else 4            # fresh attackers per verifier
  a.steps = 100 if smoke else 400           # Adam steps each, on false training instances
  a.lr = 3e-3
  a.batch_size = 128
  return c
