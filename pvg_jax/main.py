"""pvg_jax command line: --config (an ml_collections config file) and --workdir.

    python -m pvg_jax.main --config configs/arith.py --workdir runs/arith
    pvg-train --config configs/arith.py:smoke --workdir /tmp/pvg_smoke

Trains (or restores from the workdir's cache) the initial prover and verifier, evaluates
them on held-out problems and writes <workdir>/summary.json. On several hosts, run the same
command on every host with --multihost (jax.distributed reads the cluster from the
environment).
"""

from __future__ import annotations

import json
import pathlib

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from pvg_jax import config as config_lib
from pvg_jax import players, sharding
from pvg_jax.metrics import MetricWriter

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, report.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() first.")
flags.mark_flags_as_required(["config", "workdir"])


def train(cfg, workdir: str | pathlib.Path) -> dict:
  """The main job; returns the summary it writes to <workdir>/summary.json."""
  config_lib.validate(cfg)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  mesh = sharding.make_mesh(cfg.mesh.shape)
  writer = MetricWriter(workdir)
  try:
    init = players.initial_players(cfg, workdir, mesh, writer)
  finally:
    writer.close()
  summary = {"initial_players": init.report}
  if jax.process_index() == 0:
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
  r = init.report
  print(f"prover helpful accuracy {r['helpful_accuracy']:.3f} | sneaky accuracy "
        f"{r['sneaky_accuracy']:.3f} | verifier pairwise accuracy "
        f"{r['verifier_pairwise_accuracy']:.3f} (AUC {r['verifier_auc']:.3f})")
  return summary


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _MULTIHOST.value:
    jax.distributed.initialize()
  logging.set_verbosity(logging.INFO)
  train(_CONFIG.value, _WORKDIR.value)


def run() -> None:
  """Console-script entry point (pvg-train)."""
  app.run(main)


if __name__ == "__main__":
  run()
