"""The game on GSM8K with pretrained-format players: the world's layout and checker on the
committed tiny checkpoints' tokenizer, the players' import, and (slow) the smoke game end
to end with a kill -9 and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import gsm8k as gsm8k_config
from pvg_jax import config as config_lib
from pvg_jax import players, sharding, worlds
from pvg_jax.models import hf, hf_tokenizer
from pvg_jax.worlds.gsm8k import flaws
from pvg_jax.worlds.gsm8k import world as gsm8k_world
from tests.conftest import REPO


@pytest.fixture(scope="module")
def cfg(gsm8k_dir):
  c = gsm8k_config.get_config("smoke")
  with c.unlocked():
    c.world.data_dir = str(gsm8k_dir)
  return c


@pytest.fixture(scope="module")
def world(cfg):
  return worlds.make(cfg)


def test_splits_are_disjoint_halves_of_train_and_the_test_split(world):
  sizes = world.split_sizes
  assert min(sizes.values()) > 300, sizes
  lines = {s: {world.problem(s, i).line for i in range(n)} for s, n in sizes.items()}
  assert not lines["prover"] & lines["verifier"]
  assert abs(sizes["prover"] - sizes["verifier"]) < 0.2 * sizes["prover"]
  with pytest.raises(ValueError, match="usable problems"):
    world.problem("test", sizes["test"])


def test_reading_through_tfds_gives_the_same_world(cfg, world, tmp_path):
  tfds_cfg = cfg.copy_and_resolve_references()
  with tfds_cfg.unlocked():
    tfds_cfg.world.tfds_dir = str(tmp_path / "tfds")
  via_tfds = worlds.make(tfds_cfg)
  assert via_tfds.split_sizes == world.split_sizes
  for split in ("prover", "test"):
    assert [via_tfds.problem(split, i) for i in range(20)] == [world.problem(split, i)
                                                               for i in range(20)]


def test_roles_live_in_one_span_the_verifier_never_sees(world):
  probs = world.problems("prover", [0, 0, 1])
  prompts = world.prompts(probs, [gsm8k_world.ROLE_HELPFUL, gsm8k_world.ROLE_SNEAKY,
                                  gsm8k_world.ROLE_SNEAKY])
  start, stop = world.layout.role_span
  assert prompts.shape == (3, world.layout.prompt_len)
  differ = np.flatnonzero(prompts[0] != prompts[1])
  assert differ.size and differ.min() >= start and differ.max() < stop
  view = world.verifier_view(prompts)
  np.testing.assert_array_equal(view[0], view[1])
  swapped = world.other_role_view(prompts)
  np.testing.assert_array_equal(swapped[0], prompts[1])
  np.testing.assert_array_equal(swapped[1], prompts[0])
  text = world.tokenizer.decode(prompts[0])
  assert text.startswith(f"Question: {probs[0].question}\n") and text.endswith("Answer:\n")


def test_gold_solutions_are_correct_and_flawed_ones_have_one_arith_step(world):
  rng = np.random.default_rng(0)
  for i in range(50):
    problem = world.problem("verifier", i)
    batch = world.solution_batch([problem, problem], [gsm8k_world.ROLE_HELPFUL,
                                                      gsm8k_world.ROLE_SNEAKY], rng)
    solutions = batch.tokens[:, world.layout.prompt_len:]
    gold, flawed = (world.check(problem, s) for s in solutions)
    assert gold.correct and gold.first_error is None and all(gold.valid)
    assert not flawed.correct and flawed.error_type == "arith"
    assert flawed.errors.count("arith") == 1 and flawed.errors[-1] == "ok"
    eos = int(np.argmax(solutions[0] == world.tokenizer.eos_id))
    assert batch.loss_mask[0].sum() == eos + 1


def test_the_players_are_imported_from_their_checkpoints(cfg, world):
  prover, verifier = players.player_specs(cfg, world)
  assert (prover.heads, verifier.heads) == (("lm",), ("score",))
  assert prover.pad_id == world.tokenizer.pad_id and prover.mlp == "swiglu"
  assert prover.kv_heads == 2 and verifier.d_model < prover.d_model
  mesh = sharding.make_mesh((-1, 1, 1))
  params = players.initial_params(cfg, "verifier", verifier, mesh, jax.random.key(0))
  assert params["score_head"].shape == (verifier.d_model, 1)
  assert len(jax.devices()) == 8 and params["embed"].sharding.mesh.size == 8
  config_lib.validate(cfg)


def test_missing_gsm8k_inputs_are_config_errors_naming_the_key(cfg):
  for key in ("prover.checkpoint", "world.data_dir"):
    bad = cfg.copy_and_resolve_references()
    with bad.unlocked():
      section, name = key.split(".")
      bad[section][name] = ""
    with pytest.raises(config_lib.ConfigError, match=f"config.{key}: the gsm8k world needs"):
      config_lib.validate(bad)


def test_the_special_tokens_can_be_set_in_the_config(cfg, world):
  other = cfg.copy_and_resolve_references()
  with other.unlocked():
    other.world.eos_token, other.world.bos_token = "<|finetune_right_pad_id|>", "none"
    other.world.pad_token = "<|end_of_text|>"
  tok = worlds.make(other).tokenizer
  assert (tok.eos_id, tok.pad_id, tok.bos_id) == (world.tokenizer.pad_id,
                                                  world.tokenizer.eos_id, None)
  with other.unlocked():
    other.world.eos_token = "<|eot_id|>"
  with pytest.raises(hf_tokenizer.TokenizerError, match="set config.world.eos_token to"):
    worlds.make(other)


def test_flaws_fit_the_world(world):
  """Every usable problem has a flaw (the split filter), and it still fits the layout."""
  rng = np.random.default_rng(1)
  for i in range(100):
    problem = world.problem("prover", i)
    flawed = flaws.inject(problem.solution, rng).solution
    assert len(world.tokenizer.encode(flawed)) < world.layout.solution_len


def _run(workdir, gsm8k_dir) -> subprocess.Popen:
  env = {**os.environ, "PYTHONUNBUFFERED": "1"}
  return subprocess.Popen(
      [sys.executable, "-m", "pvg_jax.main", "--config", "configs/gsm8k.py:smoke",
       f"--config.world.data_dir={gsm8k_dir}", "--workdir", str(workdir)],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_smoke_game_runs_and_resumes_after_kill_9_with_the_same_summary(tmp_path, gsm8k_dir):
  """import -> SFT init -> one round -> eval on the tiny checkpoints; a second run killed
  (SIGKILL) once its game has checkpointed, then rerun, writes the same summary.json."""
  reference = tmp_path / "reference"
  proc = _run(reference, gsm8k_dir)
  _, err = proc.communicate(timeout=900)
  assert proc.returncode == 0, err[-3000:]
  expected = json.loads((reference / "summary.json").read_text())
  assert expected["initial_players"]["prover_params"] == 205_120

  killed = tmp_path / "killed"
  proc = _run(killed, gsm8k_dir)
  deadline = time.time() + 900
  while not any((killed / "checkpoints").glob("[0-9]*/files.sha256.json")):
    assert proc.poll() is None and time.time() < deadline, "ended before a game checkpoint"
    time.sleep(0.2)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  proc = _run(killed, gsm8k_dir)
  _, err = proc.communicate(timeout=900)
  assert proc.returncode == 0, err[-3000:]
  resumed = json.loads((killed / "summary.json").read_text())
  assert json.dumps(resumed, sort_keys=True) == json.dumps(expected, sort_keys=True)

  for player, heads in (("prover", ("lm",)), ("verifier", ("score",))):   # usable outside
    out = tmp_path / "exported" / player
    done = subprocess.run([sys.executable, "-m", "pvg_jax.models.hf_export", "--workdir",
                           str(killed), "--out", str(out), "--player", player], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    spec, _ = hf.load(out, heads, sharding.make_mesh((-1, 1, 1)), sharding.DEFAULT_RULES,
                      jax.random.key(0))
    assert spec.heads == heads and (out / "tokenizer.json").exists()
