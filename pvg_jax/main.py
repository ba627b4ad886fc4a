"""pvg_jax command line: --config (an ml_collections config file) and --workdir.

    python -m pvg_jax.main --config configs/arith.py --workdir runs/arith
    pvg-train --config configs/arith.py:smoke --workdir /tmp/pvg_smoke

Runs the checkability game (initial players, cached, then the rounds), resuming from the
workdir's latest checkpoint if there is one, and writes <workdir>/summary.json. A config
with game_type "anil" (configs/anil.py) runs Anil et al.'s toy games instead
(pvg_jax.anil.run). On several
hosts, run the same command on every host with --multihost (jax.distributed reads the
cluster from the environment).
"""

from __future__ import annotations

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from pvg_jax.train import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, report.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() first.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Continue a workdir whose run had a different config.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _MULTIHOST.value:
    jax.distributed.initialize()
  logging.set_verbosity(logging.WARNING)
  cfg = _CONFIG.value
  if cfg.get("game_type") == "anil":     # configs/anil.py: the toy games of METHOD 4
    from pvg_jax.anil import run as anil_run
    anil_run.train(cfg, _WORKDIR.value, _ALLOW_CONFIG_CHANGE.value)
  else:
    train(cfg, _WORKDIR.value, _ALLOW_CONFIG_CHANGE.value)


def run() -> None:
  """Console-script entry point (pvg-train)."""
  app.run(main)


if __name__ == "__main__":
  run()
