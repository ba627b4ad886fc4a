"""Operations, piece by piece (docs/operations.md): atomic files, the workdir lock, game
checkpoints that detect damage and fall back, nothing non-finite saved, resumable
supervised training, SIGTERM in a supervised loop, the divergence guard, rollout chunks
stored once. The end-to-end fault injection on the smoke game is tests/test_faults.py."""

import errno
import json
import os
import pathlib
import struct

import jax
import numpy as np
import pytest

from pvg_jax import checkpoint, cli, files, metrics, players, preemption, sharding
from pvg_jax.games import phases
from pvg_jax.games.state import GameCheckpointer, Progress
from pvg_jax.worlds.arith import world as arith_world


def test_atomic_writes_leave_no_temp_files(tmp_path):
  files.atomic_write_text(tmp_path / "a.json", "1")
  files.atomic_write_text(tmp_path / "a.json", "2")
  files.atomic_save_npz(tmp_path / "x.npz", {"v": np.arange(3)})
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "x.npz"]
  assert (tmp_path / "a.json").read_text() == "2"
  np.testing.assert_array_equal(np.load(tmp_path / "x.npz")["v"], np.arange(3))


def test_move_aside_never_overwrites(tmp_path):
  aside = tmp_path / "aside"
  for content in ("first", "second"):
    (tmp_path / "f").write_text(content)
    files.move_aside(tmp_path / "f", aside)
  assert sorted((p.name, p.read_text()) for p in aside.iterdir()) == [
      ("f", "first"), ("f.1", "second")]


def test_second_lock_is_refused_and_names_the_holder(tmp_path):
  with files.WorkdirLock(tmp_path):
    with pytest.raises(cli.UserError, match=rf"{tmp_path} is in use by pid {os.getpid()}"):
      with files.WorkdirLock(tmp_path):
        pass
  with files.WorkdirLock(tmp_path):     # released: free again
    pass


def _tree(value: float):
  """Incompressible values, so the chunk files hold them as they are."""
  noise = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
  noise[0, 0] = 0.0
  return {"w": jax.numpy.asarray(noise + value), "step": jax.numpy.array(3, jax.numpy.int32)}


def _abstract():
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _tree(0.0))


def _two_checkpoints(directory):
  ckpt = GameCheckpointer(directory)
  ckpt.save(_tree(1.0), Progress(round=0, phase="prover"))
  ckpt.save(_tree(2.0), Progress(round=1, phase="verifier"))
  ckpt.close()


def test_game_checkpoints_leave_the_preemption_sync_point_to_the_game(tmp_path,
                                                                     monkeypatch):
  """Orbax's manager would report its checkpoint steps to JAX's preemption sync point,
  which then agrees on a step the game's own counter can have passed (a SIGTERM to one of
  two processes that never stopped the run): a save must not touch it."""
  from jax.experimental import multihost_utils
  calls = []
  monkeypatch.setattr(multihost_utils, "reached_preemption_sync_point",
                      lambda step: calls.append(step) or False)
  _two_checkpoints(tmp_path / "ckpt")
  assert calls == []


def _flip_a_bit(step_dir: pathlib.Path) -> None:
  """Flip one bit in the middle of each chunk-data file of the array item (OCDBT's
  `ocdbt.process_*/d/*`). Some files have regions no array reads, so one flip in one file
  can be harmless; one per file certainly changes some array's bytes without breaking
  Orbax's own reading: only the SHA-256 can notice."""
  data = sorted((step_dir / "arrays").glob("ocdbt.process_*/d/*"))
  assert data, f"no chunk data under {step_dir / 'arrays'}"
  for path in data:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def _flip_a_bit_without_manifest(step_dir: pathlib.Path) -> None:
  """A step killed after Orbax finalized it and before its file manifest was written:
  only the arrays' own SHA-256 is left to notice."""
  (step_dir / "files.sha256.json").unlink()
  _flip_a_bit(step_dir)


def _truncate(step_dir: pathlib.Path) -> None:
  data = max((p for p in (step_dir / "arrays").rglob("*") if p.is_file()),
             key=lambda p: p.stat().st_size)
  data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])


def _remove_metadata(step_dir: pathlib.Path) -> None:
  (step_dir / "arrays" / "_METADATA").unlink()


@pytest.mark.parametrize("damage", [_flip_a_bit, _flip_a_bit_without_manifest, _truncate,
                                    _remove_metadata])
def test_damaged_newest_checkpoint_is_moved_aside_and_the_older_restored(tmp_path, damage,
                                                                        capsys):
  directory = tmp_path / "checkpoints"
  _two_checkpoints(directory)
  damage(directory / "2")
  ckpt = GameCheckpointer(directory)
  arrays, progress = ckpt.latest(_abstract())
  out = capsys.readouterr().out
  assert f"damaged checkpoint: {directory / '2'}" in out and len(out.splitlines()) == 2
  if damage is _flip_a_bit:
    assert "file arrays/ocdbt.process_0/d/" in out and "does not match its SHA-256" in out
  if damage is _flip_a_bit_without_manifest:
    assert "array ['w'] does not match its SHA-256" in out
  assert progress.round == 0 and float(arrays["w"][0, 0]) == 1.0
  assert (tmp_path / "checkpoints_damaged" / "2").is_dir()           # kept, not deleted
  ckpt.save(_tree(3.0), Progress(round=0, phase="eval"))              # numbering goes on
  ckpt.close()
  arrays, progress = GameCheckpointer(directory).latest(_abstract())
  assert progress.phase == "eval" and float(arrays["w"][0, 0]) == 3.0


def test_no_intact_checkpoint_stops_and_says_so(tmp_path):
  directory = tmp_path / "checkpoints"
  _two_checkpoints(directory)
  _flip_a_bit(directory / "1")
  _flip_a_bit(directory / "2")
  with pytest.raises(checkpoint.NoIntactCheckpointError, match="no intact checkpoint left"):
    GameCheckpointer(directory).latest(_abstract())
  assert sorted(p.name for p in (tmp_path / "checkpoints_damaged").iterdir()) == ["1", "2"]


def test_the_room_a_checkpoint_needs_is_checked_first_with_a_bound_that_holds(tmp_path,
                                                                             monkeypatch):
  """The free-space check before a save bounds what Orbax writes, also for many small
  leaves (each costs OCDBT a few KB: 200 leaves of 1 KB take about 1.1 MB), and a disk
  short of it stops the save before Orbax starts, as the one-line disk-full error."""
  rng = np.random.default_rng(0)
  tree = {f"leaf{i}": jax.numpy.asarray(rng.normal(size=256).astype(np.float32))
          for i in range(200)}
  ckpt = GameCheckpointer(tmp_path / "checkpoints")
  ckpt.save(tree, Progress(round=0, phase="prover"))
  used = files.footprint(tmp_path / "checkpoints" / "1")
  assert 200 * 1024 < used <= checkpoint.checkpoint_bytes(tree)
  assert checkpoint.checkpoint_bytes(tree, tmp_path / "checkpoints" / "1") >= 1.25 * used
  monkeypatch.setattr(files, "free_bytes", lambda directory: used)
  with pytest.raises(OSError) as e:
    ckpt.save(tree, Progress(round=0, phase="verifier"))
  ckpt.close()
  assert cli.user_error_message(e.value).startswith(
      f"disk full writing {tmp_path / 'checkpoints'}: free space")
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1"]


def test_non_finite_state_is_never_saved(tmp_path):
  ckpt = GameCheckpointer(tmp_path / "checkpoints")
  bad = _tree(1.0)
  bad["w"] = bad["w"].at[1, 2].set(np.nan)
  with pytest.raises(metrics.NonFiniteError, match=r"\['w'\].*PPO step 7; not saved"):
    ckpt.save(bad, Progress(round=0, phase="prover", ppo_step=7))
  assert ckpt.manager.latest_step() is None
  with pytest.raises(metrics.NonFiniteError, match="not saved"):
    checkpoint.save(tmp_path / "snap", bad, "k")
  assert not (tmp_path / "snap").exists()


def test_divergence_guard():
  import ml_collections
  pg = ml_collections.ConfigDict({"max_kl": 25.0, "min_parseable": 0.05})
  assert phases._diverged(pg, {"kl": 1.0, "parseable": 0.9}) is None
  assert "KL to the initial prover 125.0" in phases._diverged(pg, {"kl": 125.0})
  assert "parseable share 0.000" in phases._diverged(pg, {"kl": 0.1, "parseable": 0.0})


def test_resumed_rollout_chunks_hold_each_step_once(tmp_path):
  class Ctx:
    workdir = tmp_path
  directory = phases.rollout_dir(Ctx, 0)
  for first, last in ((0, 2), (3, 5), (6, 8)):
    steps = np.repeat(np.arange(first, last + 1), 2)
    files.atomic_save_npz(directory / f"ppo_steps_{first:05d}_{last:05d}.npz",
                          {"step": steps, "x": steps * 10})
  phases._drop_chunks_from(Ctx, 0, 5)      # resumed from the checkpoint at step 5
  names = sorted(p.name for p in directory.iterdir())
  assert names == ["ppo_steps_00000_00002.npz", "ppo_steps_00003_00004.npz"]
  kept = np.load(directory / names[1])
  np.testing.assert_array_equal(kept["step"], [3, 3, 4, 4])
  np.testing.assert_array_equal(kept["x"], [30, 30, 40, 40])


def test_sigterm_in_sft_checkpoints_and_the_resumed_run_is_identical(smoke_config, tmp_path,
                                                                     monkeypatch):
  """SIGTERM (here: preemption.requested answering yes at the 7th poll) in a 12-step SFT:
  Preempted, a partial checkpoint at step 7; the resumed run ends with exactly the params
  of an uninterrupted one."""
  cfg = smoke_config.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.sft.steps = 12
  world = arith_world.ArithWorld(cfg.world, cfg.seed)
  spec, _ = players.player_specs(cfg, world)
  mesh = sharding.make_mesh((-1, 1, 1))
  writer = metrics.MetricWriter(tmp_path)
  reference = players.train_prover(cfg, world, spec, mesh, writer)

  resume = players.Resume(tmp_path / "partial", "k", every=100)
  polls = iter(range(1, 1000))
  monkeypatch.setattr(preemption, "requested", lambda: next(polls) == 7)   # SIGTERM at 7
  with pytest.raises(cli.Preempted, match="prover_sft at step 7"):
    players.train_prover(cfg, world, spec, mesh, writer, resume)
  monkeypatch.undo()
  assert (tmp_path / "partial" / "meta.json").exists()
  resumed = players.train_prover(cfg, world, spec, mesh, writer, resume)
  writer.close()
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed),
               jax.device_get(reference))


def _tensorboard_scalars(logdir: pathlib.Path) -> list[tuple[str, int, float]]:
  """(tag, step, value) of every scalar in the event files under `logdir`, read as
  TensorBoard reads them: length-prefixed records of `Event` protos."""
  from tensorboardX.proto.event_pb2 import Event
  out = []
  for path in sorted(logdir.glob("events*")):
    data, i = path.read_bytes(), 0
    while i < len(data):
      (n,) = struct.unpack("Q", data[i:i + 8])
      event = Event.FromString(data[i + 12:i + 12 + n])
      i += 12 + n + 4
      out += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
  return out


def test_tensorboard_holds_the_scalars_of_metrics_jsonl(tmp_path):
  writer = metrics.MetricWriter(tmp_path)
  writer.write("round_0/prover", 1, {"loss": np.float32(0.25)}, {"accuracy": 0.5})
  writer.write("round_0/prover", 2, {"loss": np.float32(0.125)}, {"undefined": float("nan")})
  writer.close()
  assert _tensorboard_scalars(tmp_path / "tensorboard") == [
      ("round_0/prover/loss", 1, 0.25), ("round_0/prover/accuracy", 1, 0.5),
      ("round_0/prover/loss", 2, 0.125)]


def test_a_full_disk_fails_the_metric_write_itself(tmp_path):
  """Both files are written and flushed in the calling thread: ENOSPC (here /dev/full as
  the event file) raises from `write`, and closing afterwards leaves no writer behind."""
  writer = metrics.MetricWriter(tmp_path)
  if not pathlib.Path("/dev/full").exists():
    pytest.skip("no /dev/full")
  writer._tb._file.close()
  writer._tb._file = open("/dev/full", "wb")   # noqa: SIM115 (closed by the writer)
  with pytest.raises(OSError) as e:
    writer.write("a", 1, {"loss": np.float32(0.5)})
  assert e.value.errno == errno.ENOSPC
  with pytest.raises(OSError):
    writer.close()
  assert writer._tb is None
  writer.close()


def test_a_torn_metrics_line_is_cut_before_appending(tmp_path):
  (tmp_path / "metrics.jsonl").write_text('{"phase": "a", "step": 1}\n{"phase": "a", "st')
  writer = metrics.MetricWriter(tmp_path)
  writer.write("a", 2, {"loss": np.float32(0.5)})
  writer.close()
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(x)["step"] for x in lines] == [1, 2]
