"""pvg_jax command line: --config (an ml_collections config file) and --workdir.

    python -m pvg_jax.main --config configs/arith.py --workdir runs/arith
    pvg-train --config configs/arith.py:smoke --workdir /tmp/pvg_smoke

Runs the checkability game (initial players, cached, then the rounds), resuming from the
workdir's latest checkpoint if there is one, and writes <workdir>/summary.json. A config
with game_type "anil" (configs/anil.py) runs Anil et al.'s toy games instead
(pvg_jax.anil.run). On several
hosts, run the same command on every host with --multihost (jax.distributed reads the
cluster from the environment, or --coordinator_address/--num_processes/--process_id, as
launch/local.py passes them); launch/ has the launchers, docs/launch.md the targets.

Exit codes (pvg_jax.cli): 0 done, 2 user error (one line on stderr), 3 the run failed
(non-finite values, no intact checkpoint), 75 preempted (run the same command to resume).
"""

from __future__ import annotations

import re

import jax
from absl import flags, logging
from ml_collections import config_flags

from pvg_jax import cli
from pvg_jax.train import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, report.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() first.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "With --multihost off a detected cluster (SLURM, TPU pod, "
    "Open MPI, ...): host:port of process 0, e.g. localhost:12355 (launch/local.py).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "With --coordinator_address.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "With --coordinator_address.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Continue a workdir whose run had a different config.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> None:
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  if _MULTIHOST.value:
    initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  logging.set_verbosity(logging.WARNING)
  try:
    cfg = _CONFIG.value
    game_type = cfg.get("game_type")
  except OSError as e:       # ml_collections defers a missing or unloadable config file
    missing = re.search(r"No such file or directory: '([^']+)'", str(e))
    raise cli.UserError(f"--config: no such file: {missing.group(1)}" if missing
                        else f"--config: {cli.one_line(e)}") from None
  if game_type == "anil":     # configs/anil.py: the toy games of METHOD 4
    from pvg_jax.anil import run as anil_run
    anil_run.train(cfg, _WORKDIR.value, _ALLOW_CONFIG_CHANGE.value)
  else:
    train(cfg, _WORKDIR.value, _ALLOW_CONFIG_CHANGE.value)


def initialize_distributed(coordinator: str | None, num_processes: int | None,
                           process_id: int | None) -> None:
  """jax.distributed.initialize(): from the cluster's environment (SLURM, TPU pods, Open
  MPI, ...) when no coordinator is given, else from the three values. On CPU the
  processes' collectives go over gloo."""
  given = (coordinator, num_processes, process_id)
  if any(v is not None for v in given) and None in given:
    raise cli.UserError("--coordinator_address, --num_processes and --process_id go "
                        "together")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")   # CPU devices only
  jax.distributed.initialize(coordinator, num_processes, process_id)
  if jax.process_index() != 0:        # process 0 speaks: one set of progress bars and
    import functools  # summaries (stderr, where errors go, stays open)
    import os
    import sys

    import tqdm
    tqdm.tqdm.__init__ = functools.partialmethod(tqdm.tqdm.__init__, disable=True)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)


def run() -> None:
  """Console-script entry point (pvg-train)."""
  cli.run_app("pvg-train", main)


if __name__ == "__main__":
  run()
