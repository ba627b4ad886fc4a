"""Learning tests: does the prover phase learn what it should, and nothing else?

Formula tests (test_rl.py) cannot catch a schedule that runs too fast, a critic that
drowns the policy in noise, or one role's training leaking into the other. These tests run
the learning probes of pvg_jax/games/probes.py at CI size (configs/arith.py:learn, a small
but competent prover) and check behaviour. Every accuracy bound is derived from the
sampling noise of the measurement: each probe measures accuracy on one sample per test
problem and role, n = evals problems, before and after; two independent estimates of a
rate p differ by more than 3 sqrt(2 p (1 - p) / n) with probability ~0.3%
(`probes.noise_bound`). A KL bound comes from Pinsker's inequality: a policy within KL d
of the initial one moves the probability of any event (a correct solution) by at most
sqrt(d / 2), so d <= 2 eps^2 keeps that move below the accuracy noise bound eps.
"""

import jax
import ml_collections
import numpy as np
import pytest

from configs import arith
from pvg_jax import players, sharding, train
from pvg_jax.games import jitted, phases, probes
from pvg_jax.metrics import MetricWriter
from pvg_jax.worlds.arith import world as arith_world

pytestmark = pytest.mark.slow

STEPS = 60            # PPO steps of every probe
NUM_PROBLEMS = 2048   # test problems each measure samples (one per role)


@pytest.fixture(scope="module")
def learn(tmp_path_factory):
  """(config, world, initial players, mesh), the players trained once for the module."""
  workdir = tmp_path_factory.mktemp("learn")
  cfg = arith.get_config("learn")
  with cfg.unlocked():
    cfg.init_players_dir = str(workdir / "init_players")
  # one device: on a 2-core CPU the 8 fake devices of conftest.py only slow these down
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  init = players.initial_players(cfg, workdir, mesh, MetricWriter(workdir))
  return cfg, arith_world.ArithWorld(cfg.world, cfg.seed), init, mesh


@pytest.fixture(scope="module")
def probe_results(learn):
  """Every probe once, sharing one measure (the same test problems and sampling keys)."""
  cfg, world, init, mesh = learn
  out = {}
  measure = probes.ProverMeasure(cfg, world, init, NUM_PROBLEMS)
  for name in ("zero", "correctness", "oracle_src", "sneaky_only"):
    out[name] = probes.run_probe(cfg, world, init, mesh, name, STEPS, measure, NUM_PROBLEMS)
  return out


def test_initial_prover_is_in_the_learnable_range(probe_results):
  """The probes below can only show learning from a prover that is neither hopeless nor
  perfect."""
  before = probe_results["zero"]["before"]
  assert 0.2 < before["helpful_accuracy"] < 0.8, before
  assert before["sneaky_accuracy"] < before["helpful_accuracy"] - 0.1, before


def test_zero_reward_ppo_stays_put(probe_results):
  """R = 0: only the KL penalty acts. Accuracy stays within the noise bound and the KL to
  the initial prover within the Pinsker bound of that noise."""
  r = probe_results["zero"]
  eps = r["noise_bound_helpful"]
  b, a = r["before"], r["after"]
  assert abs(a["helpful_accuracy"] - b["helpful_accuracy"]) <= eps, r
  assert abs(a["sneaky_accuracy"] - b["sneaky_accuracy"]) <= r["noise_bound_sneaky"], r
  assert a["kl_helpful"] <= 2 * eps**2 and a["kl_sneaky"] <= 2 * eps**2, r


def test_correctness_ppo_raises_accuracy(probe_results):
  """R = correct on the helpful role raises helpful accuracy by more than the noise bound
  within STEPS PPO steps."""
  r = probe_results["correctness"]
  gain = r["after"]["helpful_accuracy"] - r["before"]["helpful_accuracy"]
  assert gain > r["noise_bound_helpful"], r


def test_oracle_src_raises_accuracy(probe_results):
  """Helpful-only SRC with the grader as verifier raises helpful accuracy by more than the
  noise bound."""
  r = probe_results["oracle_src"]
  gain = r["after"]["helpful_accuracy"] - r["before"]["helpful_accuracy"]
  assert gain > r["noise_bound_helpful"], r


def test_oracle_src_from_a_confident_prover(learn):
  """From a prover that is already confidently correct on many groups (the initial prover
  after correctness PPO), oracle SRC must still not lower helpful accuracy beyond the
  noise, and the groups whose b solutions are all identical and correct must not be pushed
  down: with the group baseline their advantage is exactly zero."""
  cfg, world, init, mesh = learn
  sharp = probes.run_probe(cfg, world, init, mesh, "correctness", STEPS, None,
                           NUM_PROBLEMS, keep_state=True)
  confident = players.Players(init.prover_spec, sharp["state"]["params"]["policy"],
                              init.verifier_spec, init.verifier_params, init.report)
  r = probes.run_probe(cfg, world, confident, mesh, "oracle_src", STEPS, None, NUM_PROBLEMS)
  uniform = np.mean([c["uniform_correct_groups"] for c in r["curve"]])
  assert uniform > 0.1, "the starting prover is not confident on many groups"
  change = r["after"]["helpful_accuracy"] - r["before"]["helpful_accuracy"]
  assert change > -r["noise_bound_helpful"], r


def test_sneaky_only_ppo_leaves_the_helpful_role(probe_results):
  """SRC on the sneaky role only moves the sneaky role (its KL grows past the Pinsker
  bound, so the probe did train) and leaves helpful accuracy within the noise bound."""
  r = probe_results["sneaky_only"]
  eps = r["noise_bound_helpful"]
  assert r["after"]["kl_sneaky"] > 2 * eps**2, r
  change = r["after"]["helpful_accuracy"] - r["before"]["helpful_accuracy"]
  assert abs(change) <= eps, r


def test_learning_rate_follows_the_schedule_in_ppo_steps(learn):
  """The rate the optimizer applies at PPO step s is the warmup + cosine schedule of s (not
  of the optimizer's update count, which is epochs x minibatches per step)."""
  cfg, world, init, mesh = learn
  cfg = ml_collections.ConfigDict(cfg.to_dict())
  pg = cfg.game.ppo
  pg.max_steps = pg.steps = 8
  pg.warmup_steps, pg.epochs, pg.minibatches = 3, 2, 2
  fns = jitted.build(cfg, world, init.prover_spec, init.verifier_spec, mesh)
  state = phases.fresh_prover_state(cfg, world, fns, init, init.verifier_params,
                                    jax.random.key(0))
  applied = []
  for step in range(pg.steps):
    rng = np.random.default_rng(step)
    helpful = phases.draw_roles("both", rng, pg.groups)
    problems = np.repeat(rng.integers(cfg.game.prover_problems, size=pg.groups),
                         pg.group_size)
    roles = np.repeat(np.where(helpful, 0, 1), pg.group_size)
    state, _, _, metrics, _, _, _ = phases.ppo_iteration(
        world, fns, state, init.prover_params, init.verifier_params,
        world.problems("prover", problems), roles, helpful, pg.beta, False,
        jax.random.key(step))
    applied.append(float(metrics["lr"]))
  lr, end, warm, total = pg.lr, 0.1 * pg.lr, pg.warmup_steps, pg.steps
  expected = [lr * (s + 1) / warm if s < warm else
              end + (lr - end) * 0.5 * (1 + np.cos(np.pi * (s - warm) / (total - warm)))
              for s in range(total)]
  np.testing.assert_allclose(applied, expected, rtol=1e-5)
  assert int(state["step"]) == total * pg.epochs * pg.minibatches


@pytest.fixture(scope="module")
def verifier_round(learn, tmp_path_factory):
  """Round 0 of a game (its verifier phase; one PPO step) from the learn players: its
  results, with the paired gain of V_0 over V_init on held-out pairs of source 0 and the
  gain's standard error over problems (rollout.pairwise_gain)."""
  cfg, _, _, _ = learn
  cfg = ml_collections.ConfigDict(cfg.to_dict())
  cfg.game.rounds = 1
  cfg.game.ppo.max_steps = cfg.game.ppo.steps = 1
  summary = train.train(cfg, tmp_path_factory.mktemp("verifier_round"))
  return summary["rounds"][0]


def test_verifier_phase_does_not_degrade_the_initial_verifier(verifier_round):
  """Round 0's verifier ranks held-out pairs of its own training source no worse than the
  initial verifier beyond 3 standard errors of the paired gain (a too-large fine-tuning
  rate did: 0.638 vs 0.697 at the default size)."""
  r = verifier_round
  assert r["verifier_heldout_newest_gain"] > -3 * r["verifier_heldout_newest_gain_se"], r


@pytest.mark.xfail(strict=True, reason="known limit, open: at these verifier sizes fine-tuning "
                   "on pool samples does not improve on the pretrained verifier's pairwise "
                   "accuracy (docs/learning_fixes.md)")
def test_verifier_phase_beats_the_initial_verifier(verifier_round):
  """What the verifier phase is for: V_0 beats V_init on held-out pairs of source 0 by more
  than 2 standard errors of the paired gain. Strict xfail: it fails today, and passing
  will flag the change."""
  r = verifier_round
  assert r["verifier_heldout_newest_gain"] > 2 * r["verifier_heldout_newest_gain_se"], r
