"""The checkability game end to end on the smoke config: outputs, compile-free later rounds,
kill -9 / SIGTERM resume with identical results, workdir guard, NaN handling."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from pvg_jax import cli, config, metrics, train
from pvg_jax.games.state import GameCheckpointer
from pvg_jax.rl import ppo
from tests.conftest import REPO

ROUND_KEYS = ("helpful_accuracy", "sneaky_accuracy", "verifier_heldout_pairwise_accuracy",
              "verifier_heldout_auc", "helpful_correct_score", "sneaky_incorrect_score",
              "ppo_steps", "stop_reason", "test_verifier_pairwise_accuracy",
              "sneaky_below_10pct_step", "verifier_heldout_newest_pairwise_accuracy",
              "init_verifier_heldout_newest_pairwise_accuracy")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def game_run(smoke_config, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("game")
  summary = train.train(smoke_config, workdir)
  return workdir, summary


def test_summary_and_outputs(game_run, smoke_config):
  workdir, summary = game_run
  assert json.loads((workdir / "summary.json").read_text()) == json.loads(
      json.dumps(summary, sort_keys=True))
  assert len(summary["rounds"]) == smoke_config.game.rounds
  for r in summary["rounds"]:
    for key in ROUND_KEYS:
      assert key in r, key
    assert 1 <= r["ppo_steps"] <= smoke_config.game.ppo.max_steps
  phases = {json.loads(x)["phase"] for x in (workdir / "metrics.jsonl").read_text().split("\n")
            if x}
  assert {"round_0/verifier", "round_0/prover", "round_1/prover"} <= phases
  assert sorted(p.name for p in (workdir / "pool").iterdir()) == ["source_0.npz",
                                                                   "source_1.npz"]
  g = smoke_config.game
  for r in summary["rounds"]:               # every PPO sample of every round is on disk
    chunks = sorted((workdir / "rollouts" / f"round_{r['round']}").glob("ppo_steps_*.npz"))
    steps = np.concatenate([np.load(c)["step"] for c in chunks])
    assert len(steps) == r["ppo_steps"] * g.ppo.groups * g.ppo.group_size
    assert sorted(set(steps.tolist())) == list(range(r["ppo_steps"]))
    with np.load(workdir / "rollouts" / f"round_{r['round']}" / "eval_test.npz") as ev:
      assert len(ev["correct"]) == g.eval_problems * 2 * g.eval_samples_per_role
      assert set(ev["error_type"].tolist()) <= {"ok", "format", "ungrounded", "misread",
                                                "arith"}


def test_round_1_compiles_nothing(game_run):
  workdir, _ = game_run
  timing = json.loads((workdir / "timing.json").read_text())
  assert timing["0"]["compiles"] > 0
  assert timing["1"]["compiles"] == 0


def test_finished_workdir_returns_the_same_summary(game_run, smoke_config):
  """... and writes nothing (so a finished workdir can be re-read from read-only storage)."""
  workdir, summary = game_run
  before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in workdir.rglob("*")}
  assert train.train(smoke_config, workdir) == summary
  assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in workdir.rglob("*")} == before


def test_workdir_with_another_config_is_refused(game_run, smoke_config):
  workdir, _ = game_run
  before = (workdir / "config.json").read_text()
  other = smoke_config.copy_and_resolve_references()
  with other.unlocked():
    other.game.ppo.beta = 0.5
  with pytest.raises(config.ConfigError, match="game.ppo.beta"):
    train.train(other, workdir)
  assert (workdir / "config.json").read_text() == before


# Long prover phases (only the step budget stops them) leave room to interrupt mid-phase.
LONG_PHASES = ["--config.game.ppo.max_steps=30", "--config.game.ppo.stop_window=1000"]


def _launch(workdir):
  env = {**os.environ, "PYTHONUNBUFFERED": "1"}    # keeps the 8 fake devices of conftest
  return subprocess.Popen(
      [sys.executable, "-m", "pvg_jax.main", "--config", "configs/arith.py:smoke",
       "--workdir", str(workdir), *LONG_PHASES], cwd=REPO, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True)


def _metric_lines(workdir) -> int:
  path = workdir / "metrics.jsonl"
  return len(path.read_text().splitlines()) if path.exists() else 0


def _wait_for(workdir, phase: str, step: int, proc, skip: int = 0,
              timeout: float = 300) -> None:
  """Wait until metrics.jsonl, past its first `skip` lines, logs `phase` at >= `step`."""
  path = workdir / "metrics.jsonl"
  end = time.time() + timeout
  while time.time() < end:
    if proc.poll() is not None:
      raise AssertionError(f"run ended early:\n{proc.stdout.read()}")
    if path.exists():
      for line in path.read_text().splitlines()[skip:]:
        record = json.loads(line)
        if record["phase"] == phase and record["step"] >= step:
          return
    time.sleep(0.1)
  raise AssertionError(f"{phase} step {step} not reached")


def test_kill_and_sigterm_resume_identically(tmp_path):
  """kill -9 mid-round 0, SIGTERM mid-round 1, then finish: the same summary.json as an
  uninterrupted run."""
  reference = tmp_path / "reference"
  proc = _launch(reference)
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out
  summary = json.loads((reference / "summary.json").read_text())

  workdir = tmp_path / "resumed"
  proc = _launch(workdir)
  _wait_for(workdir, "round_0/prover", 4, proc)     # after the step-3 checkpoint
  proc.send_signal(signal.SIGKILL)
  proc.wait()

  proc = _launch(workdir)
  _wait_for(workdir, "round_1/prover", 2, proc, skip=_metric_lines(workdir))
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == cli.EXIT_PREEMPTED, out
  assert "SIGTERM: checkpointed round 1" in out

  proc = _launch(workdir)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  assert json.loads((workdir / "summary.json").read_text()) == summary


def test_nan_stops_with_phase_and_step_and_keeps_last_checkpoint(game_run, smoke_config,
                                                                 tmp_path, monkeypatch):
  source, _ = game_run
  workdir = tmp_path / "nan"
  workdir.mkdir()
  shutil.copytree(source / "init_players", workdir / "init_players")   # skip SFT
  real = ppo.policy_loss
  monkeypatch.setattr(ppo, "policy_loss", lambda *a, **k: (
      lambda loss, m: (loss * np.nan, m))(*real(*a, **k)))
  # Device metrics are checked at log steps, at the last step and before every checkpoint
  # (every 3 steps in smoke), so the NaN is caught by step 3 at the latest.
  with pytest.raises(metrics.NonFiniteError, match=r"'round_0/prover' at step [123]$"):
    train.train(smoke_config, workdir)
  monkeypatch.undo()
  ckpt = GameCheckpointer(workdir / "checkpoints")
  restored = ckpt.manager.restore(ckpt.manager.latest_step(), args=ocp.args.Composite(
      progress=ocp.args.JsonRestore()))
  ckpt.close()
  assert restored["progress"]["phase"] == "prover"     # saved after the verifier phase
  assert restored["progress"]["ppo_step"] == 0         # no save after the NaN


def _one_round(game_run, smoke_config, workdir, **game_keys):
  """A one-round game in `workdir` from the module run's initial players (no SFT), with
  top-level keys and `game.ppo.*` keys (prefix ppo_) overridden; returns its summary."""
  workdir.mkdir()
  shutil.copytree(game_run[0] / "init_players", workdir / "init_players")
  cfg = smoke_config.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.game.rounds = 1
    for key, value in game_keys.items():
      if key.startswith("ppo_"):
        cfg.game.ppo[key[4:]] = value
      else:
        cfg[key] = value
  return train.train(cfg, workdir)


def test_profile_steps_write_a_trace_and_the_mfu_of_each_step(game_run, smoke_config,
                                                              tmp_path, capsys):
  _one_round(game_run, smoke_config, tmp_path / "profiled", profile_steps=2)
  profile = tmp_path / "profiled" / "profile"
  assert list(profile.rglob("*.trace.json.gz"))
  saved = json.loads((profile / "steps.json").read_text())
  rows = {r["step"]: r for r in saved["steps"]}
  assert {"sample_batch", "score", "verifier_step", "sample_ppo", "prover_step"} <= set(rows)
  for r in rows.values():
    assert r["calls"] == 2 and r["gflop"] > 0 and 0 < r["mfu"] < 1, r
  from pvg_jax.worlds.arith import world as arith_world
  solution_len = arith_world.ArithWorld(smoke_config.world, 0).layout.solution_len
  assert 1 <= rows["sample_ppo"]["trips"] <= solution_len      # decode steps it ran
  assert "MFU" in capsys.readouterr().out


def test_divergence_guard_ends_a_collapsed_round(game_run, smoke_config, tmp_path, capsys):
  """game.ppo.lr=1e6 collapses the prover without a NaN (parseable share -> 0, KL in the
  tens of nats): the round ends as diverged, in summary.json and in one printed line."""
  summary = _one_round(game_run, smoke_config, tmp_path / "diverged", ppo_lr=1e6)
  r = summary["rounds"][0]
  assert r["diverged"] and r["stop_reason"].startswith("diverged: "), r["stop_reason"]
  assert "marked diverged" in capsys.readouterr().out
