"""The debate game end to end at smoke size: it runs through pvg-train, a kill -9 (twice)
resumes to the uninterrupted run's summary.json, and the Elo tournament (pvg-eval) of its
checkpoints is consistent and cached."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pvg_jax.debate import evaluate
from pvg_jax.evals.run import load_config
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _launch(workdir):
  env = {**os.environ, "PYTHONUNBUFFERED": "1"}
  return subprocess.Popen([sys.executable, "-m", "pvg_jax.main", "--config",
                           "configs/debate.py:smoke", "--workdir", str(workdir)], cwd=REPO,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _records(workdir) -> list[dict]:
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return []
  return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("debate") / "reference"
  start = time.time()
  proc = _launch(workdir)
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err
  print(f"debate smoke game: {time.time() - start:.0f} s wall (initial players included)")
  return workdir, json.loads((workdir / "summary.json").read_text()), out


def test_smoke_game_reports_every_protocol(reference):
  workdir, summary, out = reference
  assert summary["game"] == "debate" and len(summary["rounds"]) == 2
  for row in [summary["initial_players"], *summary["rounds"]]:
    for name in ("debate", "double_consultancy", "ensembled_consultancy",
                 "single_consultancy", "flags_only", "blind"):
      assert 0.0 <= row[f"{name}_accuracy"] <= 1.0
  assert "debate" in out and "blind" in out                      # the printed table
  for r in range(2):
    for name in ("debater", "consultant", "judge_debate", "judge_consultancy"):
      assert (workdir / "snapshots" / f"round_{r}" / name / "meta.json").exists()
  phases = {r["phase"] for r in _records(workdir)}
  assert {"debater_sft", "judge_pretrain_debate", "round_0/play", "round_1/play"} <= phases
  # both policies are held to the initial debater with the configured KL weight
  play = [r for r in _records(workdir) if r["phase"].endswith("/play")]
  beta = json.loads((workdir / "config.json").read_text())["game"]["ppo"]["beta"]
  assert beta > 0 and all(r[f"{p}/beta"] == pytest.approx(beta) for r in play
                          for p in ("debate", "consultancy"))


def test_kill_9_twice_then_resume_gives_the_same_summary(reference, tmp_path):
  ref_dir, ref_summary, _ = reference
  workdir = tmp_path / "killed"
  workdir.mkdir()
  shutil.copytree(ref_dir / "init_players", workdir / "init_players")   # deterministic cache
  for phase, step in (("round_0/play", 2), ("round_1/play", 2)):
    proc = _launch(workdir)
    end = time.time() + 300
    while not any(r["phase"] == phase and r["step"] >= step for r in _records(workdir)):
      assert proc.poll() is None, proc.communicate()[1]
      assert time.time() < end, "the kill point was not reached"
      time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  assert not (workdir / "summary.json").exists()
  proc = _launch(workdir)
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err
  assert json.loads((workdir / "summary.json").read_text()) == ref_summary


def test_elo_tournament_of_the_checkpoints(reference):
  workdir, _, _ = reference
  cfg = load_config(workdir)
  result = evaluate.evaluate(cfg, workdir)
  names = [p["player"] for p in result["players"]]
  assert names == ["debater:init", "debater:0", "debater:1", "consultant:0",
                   "consultant:1", "debater:1:bo4"]
  wins, games = np.array(result["wins"]), np.array(result["games"])
  np.testing.assert_allclose(wins + wins.T, games)              # every debate has a winner
  assert (games[~np.eye(len(names), dtype=bool)] == 2 * result["questions"]).all()
  elo = np.array([p["elo"] for p in result["players"]])
  assert np.isfinite(elo).all() and abs(elo.mean()) < 1e-6
  assert np.isfinite(result["slope_debate_per_100_elo"])
  assert 0.0 <= result["correct_side_win_rate"] <= 1.0
  # a player's Elo orders its wins: the top-rated one won at least as many as the bottom
  assert wins[elo.argmax()].sum() >= wins[elo.argmin()].sum()
  assert evaluate.evaluate(cfg, workdir) == result                # cached


def test_rebuttal_turn_game_and_tournament(tmp_path):
  """The optional second turn (world.rebuttal) through the game and the tournament."""
  from configs import debate as debate_config
  from pvg_jax import train
  cfg = debate_config.get_config("smoke")
  with cfg.unlocked():
    cfg.world.rebuttal = True
    cfg.game.rounds = 1
  summary = train.train(cfg, tmp_path / "rebuttal")
  assert 0.0 <= summary["rounds"][0]["debate_accuracy"] <= 1.0
  result = evaluate.evaluate(load_config(tmp_path / "rebuttal"), tmp_path / "rebuttal")
  assert [p["player"] for p in result["players"]] == ["debater:init", "debater:0",
                                                      "consultant:0", "debater:0:bo4"]
  assert all(0.0 <= p["debate_accuracy"] <= 1.0 for p in result["players"])


def test_report_of_one_game(reference):
  """pvg-report on a debate workdir: the tables and the three figures, from the run."""
  from pvg_jax.report import build
  workdir, summary, _ = reference
  path = build.write_report(workdir)
  text = path.read_text()
  for heading in ("## Judge accuracy per protocol", "## Paired differences",
                  "## Accuracy against debater Elo", "## Quotes"):
    assert heading in text
  debate_row = next(line for line in text.splitlines() if line.startswith("| debate |"))
  assert f"{summary['rounds'][-1]['debate_accuracy']:.3f}" in debate_row
  for name in ("fig_debate_protocols", "fig_debate_elo", "fig_debate_quotes"):
    png = path.parent / f"{name}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.parametrize("view,low,high", [("debate", 0.7, 1.0), ("flags", 0.7, 1.0),
                                            ("blind", 0.42, 0.58)])
def test_judges_learn_what_their_view_holds(tmp_path, view, low, high):
  """Learning test of the judge pipeline (world, views, order averaging, loss): a judge
  trained on template transcripts decides held-out ones (unseen names) well when it reads
  the arguments or their quote flags, and a blind judge cannot beat a coin: the question
  and options do not give the answer away. Measured (400 steps, 512 questions, AVX-512
  host): debate 0.805, flags 0.779, blind 0.510; the bounds leave room for another CPU's
  rounding (chance +- 3.6 standard errors for the blind judge)."""
  import jax

  from configs import debate as debate_config
  from pvg_jax import sharding
  from pvg_jax.debate import judging
  from pvg_jax.debate import players as debate_players
  from pvg_jax.metrics import MetricWriter
  from pvg_jax.models import functional
  from pvg_jax.worlds.reading.world import ReadingWorld
  cfg = debate_config.get_config("")
  with cfg.unlocked():
    cfg.judge_pretrain.steps = 400
  world = ReadingWorld(cfg.world, 0)
  mesh = sharding.make_mesh(cfg.mesh.shape)
  _, spec = debate_players.specs(cfg, world)
  params = debate_players.train_judge(cfg, world, view, spec, mesh, MetricWriter(tmp_path))
  batch = debate_players.template_views(world, view, "test", np.arange(512),
                                        np.random.default_rng(9))
  tokens = batch["tokens"].reshape(-1, batch["tokens"].shape[-1])
  s = np.asarray(jax.jit(lambda p, t, m: functional.scores(spec, p, t, m))(
      params, tokens, tokens != world.tokenizer.pad_id)).reshape(2, -1)
  accuracy = judging.accuracy(np.asarray(judging.order_averaged(s)), batch["a_right"])
  print(f"{view} judge: held-out accuracy {accuracy:.3f}")
  assert low <= accuracy <= high, f"{view} judge: held-out accuracy {accuracy:.3f}"


def test_damaged_files_recompute_or_name_themselves(reference, tmp_path):
  """A damaged tournament cache is recomputed; a damaged summary.json is a one-line
  error naming the file."""
  from pvg_jax import cli
  from pvg_jax.debate import report
  workdir, _, _ = reference
  copy = tmp_path / "copy"
  shutil.copytree(workdir, copy)
  cfg = load_config(copy)
  good = evaluate.evaluate(cfg, copy)
  (copy / "evals" / "tournament.json").write_text('{"format": 2, "play')
  assert evaluate.evaluate(cfg, copy) == good
  (copy / "summary.json").write_text("{not json")
  with pytest.raises(cli.UserError, match="summary.json: not valid JSON"):
    report.load(copy)
