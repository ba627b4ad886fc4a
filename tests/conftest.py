"""Test setup: 8 fake CPU devices (set before jax is imported) and shared fixtures."""

import os
import pathlib
import shutil
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent XLA compilation cache for the whole session: every xdist worker and every
# process a test starts (they inherit the environment) reuses what the others compiled. The
# smoke runs compile the same programs over and over; this halves the experiment fixture.
# Compile counts are unaffected (jax reports a backend compile for a cache hit too).
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="pvg-tests-xla-cache-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
_EXPERIMENT_FIXTURES = {"smoke_experiment", "smoke_campaign"}


@pytest.hookimpl(tryfirst=True)          # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
  """For pytest-xdist's --dist loadgroup (pytest.ini): each module runs on one worker (its
  module fixtures are built once) and so does every test of the session's smoke
  experiment, the longest group, which is put first so that it starts at once."""
  del config
  for item in items:
    shared = _EXPERIMENT_FIXTURES & set(getattr(item, "fixturenames", ()))
    item.add_marker(pytest.mark.xdist_group("smoke_experiment" if shared
                                            else item.module.__name__))
  items.sort(key=lambda item: not _EXPERIMENT_FIXTURES & set(
      getattr(item, "fixturenames", ())))


def pytest_sessionfinish(session):
  if _OWN_CACHE and not hasattr(session.config, "workerinput"):   # the controller only
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


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
