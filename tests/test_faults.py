"""Fault injection on the smoke game (docs/operations.md): kill -9 at seeded random points,
damaged checkpoints, SIGTERM in every phase, SIGTERM + kill -9, a second run on the same
workdir, a full disk. Every interrupted run, resumed with the same command, ends with the
summary.json and the rollouts of an uninterrupted one."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pvg_jax import cli, train
from tests import test_operations
from tests.conftest import REPO

pytestmark = pytest.mark.slow

# Long enough phases to interrupt: 12 PPO steps a round, a 256-problem pool (16 sampling
# batches per source).
OVERRIDES = {"game.ppo.max_steps": 12, "game.ppo.stop_window": 1000,
             "game.pool_problems": 256}
ARGS = ["--config", "configs/arith.py:smoke",
        *(f"--config.{k}={v}" for k, v in OVERRIDES.items())]


def _launch(workdir, **kwargs):
  env = {**os.environ, "PYTHONUNBUFFERED": "1"}
  env.pop("PVG_DEBUG", None)
  return subprocess.Popen([sys.executable, "-m", "pvg_jax.main", *ARGS, "--workdir",
                           str(workdir)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kwargs)


def _records(workdir) -> list[dict]:
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return []
  lines = path.read_text().splitlines()
  return [json.loads(x) for x in lines if x.endswith("}")]


def _wait(proc, until, timeout: float = 600) -> None:
  end = time.time() + timeout
  while time.time() < end:
    if until():
      return
    if proc.poll() is not None:
      out, err = proc.communicate()
      raise AssertionError(f"run ended (rc {proc.returncode}) before the fault:\n{err}")
    time.sleep(0.05)
  raise AssertionError("fault point not reached")


def _reached(workdir, phase: str, step: int, skip: int = 0):
  return lambda: any(r["phase"] == phase and r["step"] >= step
                     for r in _records(workdir)[skip:])


def _finish(workdir) -> None:
  proc = _launch(workdir)
  out, err = proc.communicate(timeout=900)
  assert proc.returncode == 0, err


def _artifacts(workdir) -> dict:
  """What a resumed run must reproduce: summary.json, every PPO sample (each step once),
  the pool and the evaluation samples."""
  out = {"summary": json.loads((workdir / "summary.json").read_text())}
  for round_dir in sorted((workdir / "rollouts").iterdir()):
    chunks = sorted(round_dir.glob("ppo_steps_*.npz"))
    loaded = [dict(np.load(c)) for c in chunks]
    steps, counts = np.unique(np.concatenate([c["step"] for c in loaded]),
                              return_counts=True)
    assert steps.tolist() == list(range(len(steps))), f"a PPO step is missing in {round_dir}"
    assert (counts == counts[0]).all(), f"a PPO step is stored twice in {round_dir}"
    out[round_dir.name] = {k: np.concatenate([c[k] for c in loaded]).tolist()
                           for k in ("step", "solution", "correct")}
    out[round_dir.name]["eval"] = np.load(round_dir / "eval_test.npz")["correct"].tolist()
  for source in sorted((workdir / "pool").glob("source_*.npz")):
    out[source.name] = np.load(source)["tokens"].tolist()
  return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("faults") / "reference"
  _finish(workdir)
  return workdir, _artifacts(workdir)


@pytest.mark.parametrize("kills", [3, pytest.param(10, marks=pytest.mark.long)])
def test_kill_9_at_random_points_then_sigterm_and_kill_resume_identically(reference,
                                                                          tmp_path, kills):
  """kill -9 after a seeded random number of new metric records, `kills` times (10:
  `pytest -m long`); then SIGTERM followed 0.1 s later by kill -9 in the last round's PPO
  phase; then finish."""
  _, expected = reference
  workdir = tmp_path / "killed"
  rng = np.random.default_rng(1234)
  for _ in range(kills):
    skip = len(_records(workdir))
    proc = _launch(workdir)
    delta = int(rng.integers(2, max(3, 60 // (kills + 1))))   # the run logs 66 records
    _wait(proc, lambda s=skip, d=delta: len(_records(workdir)) >= s + d)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  proc = _launch(workdir)
  _wait(proc, _reached(workdir, "round_1/prover", 4, len(_records(workdir))))
  proc.send_signal(signal.SIGTERM)
  time.sleep(0.1)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  _finish(workdir)
  assert _artifacts(workdir) == expected


def test_sigterm_in_every_phase_exits_75_and_resumes_identically(reference, tmp_path):
  """SIGTERM during SFT, verifier pretraining, pool sampling, PPO and the last round: each
  time exit 75 and a message that says where and how to resume; meanwhile a second run on
  the same workdir is refused."""
  _, expected = reference
  workdir = tmp_path / "sigterm"
  points = [
      ("SFT", lambda skip: _reached(workdir, "prover_sft", 60, skip), "prover_sft at step"),
      ("verifier pretraining", lambda skip: _reached(workdir, "verifier_pretrain", 30, skip),
       "verifier_pretrain at step"),
      ("pool sampling", lambda skip: lambda: any((workdir / "init_players").glob(
          "report_*.json")), "SIGTERM"),
      ("PPO", lambda skip: _reached(workdir, "round_0/prover", 3, skip),
       "checkpointed round 0 phase 'prover'"),
      ("last round", lambda skip: _reached(workdir, "round_1/prover", 3, skip),
       "checkpointed round 1"),
  ]
  for i, (name, until, message) in enumerate(points):
    proc = _launch(workdir)
    _wait(proc, until(len(_records(workdir))))
    if i == 0:
      second = _launch(workdir)
      _, err = second.communicate(timeout=300)
      assert second.returncode == cli.EXIT_USAGE and "is in use by pid" in err, err
    proc.send_signal(signal.SIGTERM)
    t0 = time.time()
    _, err = proc.communicate(timeout=300)
    print(f"SIGTERM during {name}: exit {proc.returncode} after {time.time() - t0:.1f} s: "
          f"{err.strip().splitlines()[-1]}")
    assert proc.returncode == cli.EXIT_PREEMPTED, (name, err)
    assert message in err and "run the same command to resume" in err, (name, err)
    assert time.time() - t0 < 60, name
  _finish(workdir)
  assert _artifacts(workdir) == expected


def _smoke_cfg():
  """The config the command line of ARGS builds (overrides follow field references, as
  game.ppo.steps follows max_steps)."""
  from configs import arith
  cfg = arith.get_config("smoke")
  for key, value in OVERRIDES.items():
    *parents, leaf = key.split(".")
    node = cfg
    for part in parents:
      node = node[part]
    node[leaf] = value
  return cfg


@pytest.mark.parametrize("damage", [test_operations._flip_a_bit, test_operations._truncate,
                                    test_operations._remove_metadata],
                         ids=["bit_flip", "truncation", "missing_metadata"])
def test_damaged_newest_game_checkpoint_falls_back_identically(reference, tmp_path, capsys,
                                                               damage):
  source, expected = reference
  workdir = tmp_path / "damaged"
  shutil.copytree(source, workdir)
  (workdir / "summary.json").unlink()            # not finished: the game must resume
  newest = max((p for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()),
               key=lambda p: int(p.name))
  damage(newest)
  train.train(_smoke_cfg(), workdir)
  out = capsys.readouterr().out
  assert f"damaged checkpoint: {newest}" in out
  if damage is test_operations._flip_a_bit:
    assert "does not match its SHA-256" in out
  assert (workdir / "checkpoints_damaged" / newest.name).is_dir()
  assert _artifacts(workdir) == expected


def _tmpfs(path, size_kb: int) -> bool:
  path.mkdir()
  return os.geteuid() == 0 and subprocess.run(
      ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
      capture_output=True).returncode == 0


@pytest.mark.parametrize("disk", ["tmpfs", "simulated"])
def test_full_disk_is_one_line_and_keeps_the_older_checkpoints(reference, tmp_path,
                                                               monkeypatch, capsys, disk):
  """A workdir on a small tmpfs that fills during round 0 (where root may mount one), and
  ENOSPC simulated at the 5th file write: exit 2 with one error line; after freeing space
  the same command finishes with the uninterrupted run's results."""
  source, expected = reference
  mount = tmp_path / "disk"
  mounted = disk == "tmpfs" and _tmpfs(mount, 64 * 1024)
  if disk == "tmpfs" and not mounted:
    pytest.skip("cannot mount a tmpfs here (needs root); the simulated case covers it")
  mount.mkdir(exist_ok=True)
  workdir = mount / "run"
  workdir.mkdir()
  shutil.copytree(source / "init_players", workdir / "init_players")   # skip SFT
  try:
    if mounted:
      free = shutil.disk_usage(mount).free
      filler = mount / "filler"
      filler.write_bytes(b"\0" * max(free - 3_000_000, 0))   # ~3 MB left: round 0 fills it
      proc = _launch(workdir)
      _, err = proc.communicate(timeout=600)
      code, lines = proc.returncode, err.strip().splitlines()
      filler.unlink()
    else:
      from pvg_jax import files
      real, calls = files.atomic_write_bytes, {"n": 0}

      def full(path, data):
        calls["n"] += 1
        if calls["n"] >= 5:
          raise OSError(28, "No space left on device", str(path))
        real(path, data)
      monkeypatch.setattr(files, "atomic_write_bytes", full)
      with pytest.raises(SystemExit) as exit_info, cli.errors("pvg-train"):
        train.train(_smoke_cfg(), workdir)
      monkeypatch.undo()
      code, lines = exit_info.value.code, capsys.readouterr().err.strip().splitlines()
    # stderr also holds the progress bars; the error is its last line, with no traceback
    assert code == cli.EXIT_USAGE and "disk full" in lines[-1], lines[-3:]
    tracebacks = [i for i, x in enumerate(lines) if "Traceback" in x]
    assert lines[-1].startswith("pvg-train: error: ") and not tracebacks, "\n".join(
        lines[tracebacks[0] - 2 if tracebacks else -3:])
    _finish(workdir)
    assert _artifacts(workdir) == expected
  finally:
    if mounted:
      subprocess.run(["umount", str(mount)], check=False)
