"""End to end on the smoke config: the experiment driver (2 seeds + the correctness-only
baseline + a verifier-size sweep), every evaluation, and the report."""

import json
import shutil
import subprocess
import sys

import pytest

from pvg_jax import config, experiments
from pvg_jax.evals import run as evals_run
from pvg_jax.report import build

pytestmark = pytest.mark.slow

FIGURES = ("fig4_legibility_tax", "fig5_dynamics", "fig6a_attacks", "fig6b_best_of_n",
           "fig6c_attack_survival", "fig7a_flaws", "fig8a_accuracy_by_round",
           "fig8b_legibility_by_round", "fig_separability", "fig_verifier_size",
           "fig_crossplay")


@pytest.fixture(scope="module")
def experiment(smoke_experiment):
  root, cfg = smoke_experiment
  return root, cfg, build.write_report(root, evaluate=False)


def test_layout_evaluations_and_report(experiment):
  root, cfg, report = experiment
  games = [root / f"seed_{s}" / "src" for s in (0, 1)] + [root / "sweep" / "v8k"]
  for run in games:
    results = json.loads((run / "evals" / "results.json").read_text())
    assert set(evals_run.PARTS) <= set(results)
  for s in (0, 1):          # the baseline's verifier is the game's round 0: not re-measured
    results = json.loads((root / f"seed_{s}" / "correctness" / "evals" / "results.json"
                          ).read_text())
    assert set(evals_run.BASELINE_PARTS) <= set(results)
    assert not {"attacks", "best_of_n"} & set(results)
  assert not (root / "sweep" / cfg.verifier.size).exists()   # that one is seed_0/src
  text = report.read_text()
  for section in ("## Checkability training by round", "## Correctness-only baseline",
                  "## Verifier-size sweep"):
    assert section in text
  for fig in FIGURES:
    png = report.parent / f"{fig}.png"
    assert png.stat().st_size > 10_000 and f"({fig}.png)" in text
  numbers = json.loads((report.parent / "numbers.json").read_text())
  legible = numbers["legibility: budgeted checker"]
  assert all(len(v) == 2 for v in legible.values())  # seeds
  # the by-round table's paired column: last round - init, per seed
  diffs = [a - b for a, b in zip(legible[str(cfg.game.rounds - 1)], legible["init"])]
  row = next(line for line in text.splitlines()
             if line.startswith("| legibility: budgeted checker |"))
  assert row.split(" | ")[-2].startswith(f"{sum(diffs) / 2:+.3f} [")
  attacks = json.loads((root / "seed_0" / "src" / "evals" / "results.json").read_text())
  assert {(a["reward"], a["round"]) for a in attacks["attacks"]} == {   # V_init too
      (r, i) for r in ("src", "goodhart") for i in range(-1, cfg.game.rounds)}


def test_baseline_is_one_long_run_evaluated_along_the_way(experiment):
  root, cfg, _ = experiment
  base = json.loads((root / "seed_0" / "correctness" / "evals" / "results.json").read_text())
  assert base["config"]["game"]["rounds"] == 1
  budget = cfg.game.ppo.max_steps * config.BASELINE_STEPS_FACTOR
  assert base["summary"]["rounds"][0]["ppo_steps"] == budget
  steps = sorted(e["step"] for e in base["legibility"] if e["round"] == 0)
  every = cfg.game.snapshot_every
  assert steps == list(range(every, budget + 1, every))
  # one set of initial players and judges per seed, shared by the game and the baseline
  init = root / "seed_0" / "init_players"
  assert len(list(init.glob("judges_*"))) == 1 and len(list(init.glob("prover_*"))) == 1
  assert not (root / "seed_0" / "src" / "init_players").exists()


def test_evaluation_resumes_to_identical_numbers(experiment):
  root, cfg, _ = experiment
  workdir = root / "seed_1" / "src"
  before = {p.relative_to(workdir): p.read_text()
            for p in (workdir / "evals").rglob("*.json") if p.name != "results.json"}
  (workdir / "evals" / "best_of_n.json").unlink()
  shutil.rmtree(workdir / "evals" / "attacks")
  next((workdir / "evals" / "legibility").glob("round_1_*")).unlink()
  with pytest.raises(config.ConfigError, match="seed"):    # not the run's own config
    evals_run.evaluate(workdir, cfg)
  evals_run.evaluate(workdir, experiments.run_config(cfg, root, 1))
  after = {p.relative_to(workdir): p.read_text()
           for p in (workdir / "evals").rglob("*.json") if p.name != "results.json"}
  assert after == before


def test_evaluating_some_parts_keeps_the_others_while_current(experiment, tmp_path):
  """pvg-eval --parts (pvg-experiments --parts): results.json keeps every other part whose
  cached files are complete and current, and leaves out a part whose `evals` settings
  changed since (rather than report it stale)."""
  root, cfg, _ = experiment
  workdir = tmp_path / "src"
  shutil.copytree(root / "seed_0" / "src", workdir)
  read = lambda: json.loads((workdir / "evals" / "results.json").read_text())  # noqa: E731
  full = read()
  evals_run.evaluate(workdir, parts=("dynamics",))
  kept = read()
  assert set(evals_run.PARTS) <= set(kept)
  assert kept["legibility"] == full["legibility"] and kept["attacks"] == full["attacks"]
  changed = experiments.run_config(cfg, root, 0)
  changed.evals.attack_steps += 1
  evals_run.evaluate(workdir, changed, parts=("dynamics",))
  stale = read()
  assert "attacks" not in stale and stale["legibility"] == full["legibility"]
  next((workdir / "evals" / "legibility").glob("round_1_*")).unlink()    # one prover's
  evals_run.evaluate(workdir, parts=("dynamics",))
  assert "legibility" not in read() and not list((workdir / "evals" / "legibility").glob(
      "round_1_*"))                                       # nothing was computed


def test_report_command_and_unfinished_workdir(experiment, tmp_path):
  root, _, _ = experiment
  out = subprocess.run([sys.executable, "-m", "pvg_jax.report.build", "--workdir",
                        str(root / "seed_0" / "src"), "--noevaluate"],
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  one = (root / "seed_0" / "src" / "report" / "report.md").read_text()
  assert "baseline: 1 seed(s)" in one               # the sibling correctness/ run
  (tmp_path / "config.json").write_text((root / "seed_0" / "src" / "config.json").read_text())
  with pytest.raises(FileNotFoundError, match="summary.json"):
    evals_run.evaluate(tmp_path)


def test_control_games_share_the_initial_players_and_reach_the_report(experiment,
                                                                      tmp_path):
  """Control games added to a finished experiment: only they are trained (the game and
  baseline are found done), from the seed's cached initial players, evaluated for the
  control parts, and the report's paired-effects table has a row per control and seed."""
  root, cfg, _ = experiment
  copy = tmp_path / "experiment"
  shutil.copytree(root, copy)
  controls = ("frozen_verifier", "no_sneaky")
  experiments.seeds(cfg, copy, 2, controls=controls)
  for s in (0, 1):
    init = copy / f"seed_{s}" / "init_players"
    assert len(list(init.glob("prover_*"))) == 1 and len(list(init.glob("judges_*"))) == 1
    for name in controls:
      results = json.loads((copy / f"seed_{s}" / name / "evals" / "results.json").read_text())
      assert set(experiments.CONTROL_PARTS) <= set(results) and "attacks" not in results
  frozen = json.loads((copy / "seed_0" / "frozen_verifier" / "summary.json").read_text())
  assert all(r["verifier_heldout_gain"] == 0.0 for r in frozen["rounds"])   # V_i = V_init
  text = build.write_report(copy, evaluate=False).read_text()
  assert "## Paired effects" in text
  for name in ("game (src)", "correctness baseline", *controls):
    assert f"| {name} | helpful accuracy | 2 |" in text
