"""Paired effects of the report (pvg_jax/report/effects.py) on hand-made runs."""

import pytest

from pvg_jax.report import effects
from pvg_jax.report.data import Experiment


def _run(seed: int, init: float, final: float, rounds: int = 2, reward: str = "src") -> dict:
  """A results.json with the legibility entries effects reads: helpful accuracy `init` at
  the initial players and `final` at the last round's last step (checker = accuracy)."""
  steps = 4
  entries = [{"round": -1, "step": 0, "accuracy": init, "checker": {"accuracy": init},
              "panel": 0.5}]
  entries += [{"round": r, "step": steps, "accuracy": final if r == rounds - 1 else 0.0,
               "checker": {"accuracy": final if r == rounds - 1 else 0.0}, "panel": 0.5}
              for r in range(rounds)]
  return {"config": {"seed": seed, "game": {"reward": reward}},
          "summary": {"rounds": [{"ppo_steps": steps}] * rounds}, "legibility": entries}


def test_changes_and_baseline_differences_are_paired_by_seed():
  inits = [0.40, 0.50, 0.45]
  game = [_run(s, i, i + 0.02 + 0.001 * s) for s, i in enumerate(inits)]
  base = [_run(s, i, i + 0.05, rounds=1, reward="correctness") for s, i in enumerate(inits)]
  frozen = [_run(s, i, i) for s, i in enumerate(inits[:2])]     # one seed missing
  exp = Experiment(None, game, base, {}, "src", {"frozen_verifier": frozen})
  table = effects.effects(exp)
  assert list(table) == ["game (src)", "correctness baseline", "frozen_verifier"]
  acc = table["game (src)"]["helpful accuracy"]
  assert acc["change"].mean == pytest.approx(0.021) and acc["change"].excludes_zero
  assert acc["vs_baseline"].mean == pytest.approx(-0.029) and acc["vs_baseline"].excludes_zero
  assert acc["final"].high - acc["final"].low > 10 * (acc["change"].high - acc["change"].low)
  assert "vs_baseline" not in table["correctness baseline"]["helpful accuracy"]
  frozen_change = table["frozen_verifier"]["helpful accuracy"]["change"]
  assert frozen_change.n == 2 and frozen_change.mean == pytest.approx(0.0)
  frozen_vs_game = table["frozen_verifier"]["helpful accuracy"]["vs_game"]   # seeds 0, 1
  assert frozen_vs_game.n == 2 and frozen_vs_game.mean == pytest.approx(-0.0205)
  assert frozen_vs_game.excludes_zero
  assert "vs_game" not in table["game (src)"]["helpful accuracy"]
  assert "vs_game" not in table["correctness baseline"]["helpful accuracy"]
  numbers = {}
  text = "\n".join(effects.section(exp, numbers))
  assert "| game (src) | helpful accuracy | 3 |" in text and "+0.021 [" in text
  assert numbers["effects"]["frozen_verifier"]["helpful accuracy"]["change"] == [0.0, 0.0]


def test_report_evaluates_each_kind_of_run_for_its_own_parts(tmp_path):
  """pvg-report's evaluation asks for what pvg-experiments gives each run: control games
  get CONTROL_PARTS (no attacks), the others their defaults (None)."""
  from pvg_jax import config
  from pvg_jax.report import data
  for name in ("src", "correctness", "frozen_verifier", "no_sneaky"):
    (tmp_path / "seed_0" / name).mkdir(parents=True)
    (tmp_path / "seed_0" / name / "config.json").write_text("{}")
  calls = {}

  def evaluate(workdir, parts=None):
    calls[workdir.name] = parts
    return _run(0, 0.5, 0.5, reward="correctness" if workdir.name == "correctness" else "src")

  exp = data.load(tmp_path, evaluate)
  assert calls == {"src": None, "correctness": None, "frozen_verifier": config.CONTROL_PARTS,
                   "no_sneaky": config.CONTROL_PARTS}
  assert sorted(exp.controls) == ["frozen_verifier", "no_sneaky"] and len(exp.game) == 1


def _styled(run: dict, shares: list[float], world=("full", "terse")) -> dict:
  """`run` with a styles part: terse share shares[i] at the i-th prover (init first)."""
  run["config"]["world"] = {"styles": list(world)}
  provers = [(-1, 0)] + [(r, 4) for r in range(len(run["summary"]["rounds"]))]
  row = lambda t: {"full": {"share": 1 - t, "accuracy": 0.5, "over_budget_correct": 0.1},  # noqa: E731
                   "terse": {"share": t, "accuracy": 0.5, "over_budget_correct": 0.3}}
  run["styles"] = [{"round": r, "step": s, "helpful": row(t), "sneaky": row(0.5)}
                   for (r, s), t in zip(provers, shares)]
  return run


def test_styles_section_pairs_the_share_changes_by_seed(tmp_path):
  from pvg_jax.report import styles
  game = [_styled(_run(s, 0.5, 0.5), [0.6 + d, 0.6 + d, 0.6 + d]) for s, d in
          enumerate((0.0, 0.01, 0.02))]
  base = [_styled(_run(s, 0.5, 0.6, rounds=1, reward="correctness"), [0.6 + d, 0.7 + d])
          for s, d in enumerate((0.0, 0.01, 0.02))]
  numbers = {}
  text = "\n".join(styles.section(Experiment(None, game, base, {}, "src"), tmp_path,
                                  numbers))
  paired = numbers["styles helpful terse share, paired"]
  assert paired["game: share change"] == pytest.approx([0.0] * 3)
  assert paired["game - baseline"] == pytest.approx([-0.1] * 3)
  assert paired["baseline: share change"] == pytest.approx([0.1] * 3)
  assert "| helpful | terse | +0.000 [" in text and "| baseline, end | 0.290 [" in text
  assert (tmp_path / "fig_styles.png").stat().st_size > 10_000
  single = [_run(0, 0.5, 0.5)]
  assert styles.section(Experiment(None, single, [], {}, "src"), tmp_path, {}) == []


def _crossplay(run: dict, fools_init: float, fools_prover: float, fools_verifier: float,
               gap_init: float, gap_final: float) -> dict:
  """`run` with a cross-play matrix over (init, round 0, round 1) and SRC attacks on V init
  and on round 1's verifier: the sneaky fool rate is fools_init + fools_prover for a
  trained prover + fools_verifier for a trained verifier; pairwise accuracy 0.6 - fools."""
  rounds = [-1, 0, 1]

  def fools(p, v):
    return fools_init + fools_prover * (p >= 0) + fools_verifier * (v >= 0)
  run["crossplay"] = {"verifiers": rounds, "provers": {
      str(p): {"sneaky_fools": [fools(p, v) for v in rounds],
               "pairwise": [0.6 - fools(p, v) for v in rounds]} for p in rounds}}
  # incorrect scores whose best 2-step window is `gap` above the target 0.5
  run["config"]["evals"] = {"attack_window": 2}
  run["attacks"] = [{"reward": "src", "round": r, "steps": 3 if r == -1 else None, "budget": 4,
                     "target_score": 0.5, "accuracy": [0.1] * 4,
                     "incorrect_score": [0.0, 0.5 + gap, 0.5 + gap, 0.0]}
                    for r, gap in ((-1, gap_init), (1, gap_final))]
  return run


def test_verifier_side_separates_prover_and_verifier_changes():
  """With V init fixed only the prover's change shows; on the initial prover's samples only
  the verifier's; the attack gap is the last round's minus V init's, paired by seed."""
  game = [_crossplay(_run(s, 0.5, 0.5), 0.3 + 0.01 * s, 0.06, -0.02, 0.2 + 0.01 * s, 0.1)
          for s in range(3)]
  frozen = [_crossplay(_run(s, 0.5, 0.5), 0.3 + 0.01 * s, 0.06, 0.0, 0.2, 0.2)
            for s in range(3)]
  frozen[0].pop("attacks")                       # control games have no attacks
  base = [_run(s, 0.5, 0.6, rounds=1, reward="correctness") for s in range(3)]
  exp = Experiment(None, game, base, {}, "src", {"frozen_verifier": frozen})
  table = effects.verifier_effects(exp)
  assert list(table) == ["game (src)", "frozen_verifier"]      # the baseline has no verifier
  g = table["game (src)"]
  assert g["sneaky fool rate, V init fixed"]["change"].mean == pytest.approx(0.06)
  assert g["sneaky fool rate, as played"]["change"].mean == pytest.approx(0.04)
  assert g["pairwise, P init fixed"]["change"].mean == pytest.approx(0.02)
  assert g["pairwise, as played"]["change"].mean == pytest.approx(-0.04)
  assert g["sneaky fool rate, V init fixed"]["start"].mean == pytest.approx(0.31)
  gap = g["SRC attack best-window gap"]
  assert gap["change"].mean == pytest.approx(-0.11) and gap["change"].excludes_zero
  steps = g["SRC attack steps to exploit (not found: budget)"]
  assert steps["start"].mean == 3 and steps["final"].mean == 4 and steps["change"].mean == 1
  f = table["frozen_verifier"]
  assert f["sneaky fool rate, as played"]["vs_game"].mean == pytest.approx(0.02)
  assert f["SRC attack best-window gap"]["final"].n == 2
  numbers = {}
  text = "\n".join(effects.section(exp, numbers))
  assert "| game (src) | pairwise, P init fixed | 3 | 0.290 [" in text
  assert numbers["verifier effects"]["game (src)"]["pairwise, as played"]["change"] == (
      pytest.approx([-0.04] * 3))


def test_by_round_paired_column_pairs_seeds_and_skips_missing_ones():
  from pvg_jax.report import build, data
  first = data.stat([0.50, 0.60, 0.70, None])
  last = data.stat([0.52, 0.63, None, 0.9])          # seed 2 has no last round
  assert build._paired_cell(last, first, 3) == "+0.025 [-0.039, 0.089]"   # t(1) 12.71 x se 0.005
  assert build._paired_cell(data.stat([1.0, 1.1]), data.stat([0.0, 0.0]), 2).endswith("*")
  assert build._paired_cell(data.stat([None]), data.stat([0.5]), 3) == "-"
