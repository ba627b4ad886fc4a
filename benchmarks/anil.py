"""What the vmapped seed table of the toy games costs: one jitted chunk of outer steps for
1 seed and for 3 seeds at once, on FindThePlus and the binary erasure channel.

    python -m benchmarks.anil            # from the repository root

Prints seconds per chunk (median of 3 after a compile call) and the ratio; the last line is
`anil_three_seed_cost_in_single_runs=R` (the worst formulation: 3 would mean vmapping buys
nothing, 1 that three seeds cost one run). Measured on a 2-core CPU: ~1.9 for the cheap
formulations (vmapping removes per-step overhead) and ~3.3 for FindThePlus with an unrolled
follower, which is compute-bound there: on two cores three seeds cost three runs' FLOPs.
"""

from __future__ import annotations

import ml_collections

from benchmarks.common import timeit
from configs import anil
from pvg_jax.anil import game, run, tasks

CHUNK = 50   # outer steps per timed call (the default config's chunk is 200)


def chunk_seconds(cfg, task: str, formulation: str, seeds: int) -> float:
  cfg = ml_collections.ConfigDict(cfg.to_dict())
  cfg.seeds, cfg.game.chunk = seeds, CHUNK
  setup = run.make_setup(cfg, task, formulation)
  data = run.device_split(tasks.make(task, cfg[task], cfg.data.train, 0))
  states = run._initial_states(cfg, task, setup)
  return timeit(lambda s: game.train_chunk(setup, s, data, cfg.game.chunk), states, repeats=3)


def main() -> None:
  cfg = anil.get_config("")
  worst = 0.0
  for task in cfg.tasks:
    for formulation in ("simultaneous", "verifier_leads:unrolled"):
      one, three = (chunk_seconds(cfg, task, formulation, s) for s in (1, 3))
      worst = max(worst, three / one)
      print(f"{task} {formulation}: {cfg.game.chunk} outer steps, 1 seed {one:.3f} s, "
            f"3 seeds {three:.3f} s, ratio {three / one:.2f}")
  print(f"anil_three_seed_cost_in_single_runs={worst:.2f}")


if __name__ == "__main__":
  main()
