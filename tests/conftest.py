"""Test setup: 8 fake CPU devices (set before jax is imported) and shared fixtures."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def smoke_config():
  from configs import arith
  return arith.get_config("smoke")


@pytest.fixture(scope="session")
def gsm8k_dir() -> pathlib.Path:
  path = SHARED / "data" / "gsm8k"
  if not path.exists():
    pytest.fail(f"GSM8K data not found at {path}: tests read it from ../shared beside the repo")
  return path


@pytest.fixture(scope="session")
def smoke_experiment(smoke_config, tmp_path_factory):
  """pvg-experiments on the smoke config, run once per session: 2 seeds of the game and of
  the correctness-only baseline, a verifier-size sweep, every evaluation. The notebook
  (notebooks/legibility_tax.ipynb) uses the same settings, so its test resumes these runs.
  Returns (root, config)."""
  import ml_collections

  from pvg_jax import experiments
  root = tmp_path_factory.mktemp("experiment")
  cfg = ml_collections.ConfigDict(smoke_config.to_dict())
  cfg.evals.judges = NOTEBOOK_JUDGES
  cfg.evals.attack_rewards = NOTEBOOK_ATTACKS
  experiments.seeds(cfg, root, 2)
  experiments.sweep(cfg, root, ["v8k", cfg.verifier.size])
  return root, cfg


NOTEBOOK_JUDGES = ("v16k:0", "v16k:1")      # as set in the notebook
NOTEBOOK_ATTACKS = ("src", "goodhart")


@pytest.fixture(scope="session")
def smoke_campaign(smoke_experiment, tmp_path_factory):
  """A judging campaign (pvg-judge create) of the smoke experiment's seed-0 game, its
  baseline found beside it. Returns (campaign directory, game workdir)."""
  from pvg_jax.judging import main
  root, cfg = smoke_experiment
  workdir = root / "seed_0" / cfg.game.reward
  out = tmp_path_factory.mktemp("campaign") / "smoke"
  main.create(main.parser().parse_args(
      ["create", "--workdir", str(workdir), "--campaign", "smoke", "--out", str(out),
       "--samples", "16"]))
  return out, workdir
