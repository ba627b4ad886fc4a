"""Anil et al.'s toy games (pvg_jax/anil): exact task generators, the soundness audit on
verifiers with known answers, the unrolled Stackelberg gradient, config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import anil
from pvg_jax.anil import audit, game, players, run, tasks
from pvg_jax.config import ConfigError


@pytest.fixture(scope="module")
def cfg():
  return anil.get_config("smoke")


def test_bec_labels_and_certificates_are_exact(cfg):
  split = tasks.make("bec", cfg.bec, 400, seed=3)
  n, w = cfg.bec.n, cfg.bec.run
  assert split.label.mean() == 0.5
  for x_erased, windows, y, cert in zip(split.prover_input, split.windows, split.label,
                                        split.certified):
    x, erased = x_erased[:n].astype(int), x_erased[n:].astype(bool)
    bits = "".join(map(str, x))
    assert y == ("1" * w in bits)
    view = np.where(erased, 2, x)
    assert cert == any((view[i:i + w] == 1).all() for i in range(n - w + 1))
    assert not cert or y                      # a certificate never proves a false claim
    decoded = windows.reshape(n - w + 1, w, 3).argmax(-1)
    assert (decoded[:, 0] == view[:n - w + 1]).all() and (decoded[-1] == view[-w:]).all()
  assert abs(split.prover_input[:, n:].mean() - cfg.bec.erasure) < 0.03


def test_ftp_labels_are_exact(cfg):
  split = tasks.make("ftp", cfg.ftp, 300, seed=4)
  assert split.label.mean() == 0.5
  plus = tasks.PLUS.reshape(-1)
  for windows, y in zip(split.windows, split.label):
    found = any((win.astype(bool) | ~plus).all() for win in windows)
    assert y == found
  assert (split.certified == split.label.astype(bool)).all()
  # the windows tile a consistent image: neighbouring patches agree on shared pixels
  m = cfg.ftp.size - 2
  patches = split.windows.reshape(-1, m, m, 3, 3)
  assert (patches[:, :, 1:, :, :2] == patches[:, :, :-1, :, 1:]).all()
  assert (patches[:, 1:, :, :2, :] == patches[:, :-1, :, 1:, :]).all()


def test_plus_centres_match_a_loop():
  rng = np.random.default_rng(0)
  for _ in range(50):
    img = (rng.random((6, 7)) < 0.6).astype(int)
    want = np.array([[all(img[r + dr, c + dc] for dr, dc in np.argwhere(tasks.PLUS))
                      for c in range(5)] for r in range(4)])
    assert (tasks.plus_centres(img) == want).all()


def test_splits_are_deterministic_and_seeded(cfg):
  a, b = (tasks.make("ftp", cfg.ftp, 64, seed=1) for _ in range(2))
  c = tasks.make("ftp", cfg.ftp, 64, seed=2)
  assert (a.windows == b.windows).all() and not (a.windows == c.windows).all()


def _hand_verifier(hidden: int, features: list[int]) -> dict:
  """An FtP verifier MLP that accepts iff every pixel in `features` of the pointed patch
  is on: logit = 4 (s - len + 0.5) with s = sum_f x_f. Its ReLUs sit in their linear range
  (offset 10), so gradient attacks see a slope everywhere; being linear in the glimpse, its
  worst case over continuous pointers is at a vertex, where the pointer count is exact."""
  l1, b1 = np.zeros((9, hidden)), np.zeros(hidden)
  l1[features, 0], b1[0] = 1.0, 10.5 - len(features)
  l2, l3 = np.zeros((hidden, hidden)), np.zeros((hidden, 1))
  l2[0, 0], l3[0, 0] = 1.0, 4.0
  tree = {"l1": {"kernel": l1, "bias": b1}, "l2": {"kernel": l2, "bias": np.zeros(hidden)},
          "l3": {"kernel": l3, "bias": np.array([-40.0])}}
  return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), tree)


PLUS_PIXELS = [1, 3, 4, 5, 7]
BAR_PIXELS = [1, 4, 7]       # a vertical bar: three of the plus's five pixels


@pytest.mark.parametrize("message", ["discrete", "continuous"])
def test_audit_finds_the_exploit_of_a_broken_verifier(cfg, message):
  """A verifier that accepts a vertical bar as a plus is fooled on every false image that
  has one (counted exactly by trying every pointer); re-optimized attackers must find
  nearly all of that, and must not fool the verifier that checks the whole plus."""
  with cfg.unlocked():
    cfg.game.message = message
  setup = run.make_setup(cfg, "ftp", "simultaneous")
  train = run.device_split(tasks.make("ftp", cfg.ftp, 1024, seed=10))
  test = run.device_split(tasks.make("ftp", cfg.ftp, 512, seed=11))
  spec = audit.AuditSpec(restarts=2, steps=150, lr=1e-2, batch_size=128)
  key = jax.random.PRNGKey(0)
  prover = players.init(setup.prover, key)
  results = {}
  for name, pixels in (("broken", BAR_PIXELS), ("sound", PLUS_PIXELS)):
    verifier = _hand_verifier(setup.verifier.hidden, pixels)
    ev = audit.evaluate(setup, {"prover": prover, "verifier": verifier}, test)
    found = audit.audit(setup, spec, verifier, run._negatives(train), run._negatives(test),
                        key)
    results[name] = (float(ev["soundness_error_pointer"]), float(found.max()))
  exploitable, attack = results["broken"]
  assert exploitable > 0.3, results            # the exploit is real and common
  assert attack >= 0.9 * exploitable, results  # and the audit finds it
  assert results["sound"] == (0.0, 0.0), results


def _f64(tree):
  return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), tree)


@pytest.mark.parametrize("formulation", ["verifier_leads:unrolled", "prover_leads:unrolled"])
def test_unrolled_leader_gradient_matches_finite_differences(cfg, formulation):
  """d/dtheta L_lead(theta, phi_k(theta)) from leader_grad against central differences of
  the same function along random directions (float64, continuous messages, where the game
  is differentiable); the ':steps' gradient, which ignores d phi_k / d theta, must not
  match, so the test can tell the two apart. eps = 1e-7: small enough that no ReLU kink
  falls inside +-eps (at 1e-5 some did, an O(1e-6) error); the rounding error of the
  difference is ~ 1e-16 |f| / eps ~ 1e-10, so 1e-7 is a loose bound. The follower term
  measured here is ~1e-4, 1000x that bound."""
  with jax.enable_x64(True), cfg.unlocked():
    cfg.game.message = "continuous"
    cfg.game.inner_steps = 3
    cfg.game.inner_lr = 0.5
    setup = run.make_setup(cfg, "bec", formulation)
    steps_setup = run.make_setup(cfg, "bec", formulation.replace("unrolled", "steps"))
    state = game.init_state(setup, jax.random.PRNGKey(1))
    params = _f64(state.params)
    data = run.device_split(tasks.make("bec", cfg.bec, 256, seed=5))
    batch = _f64(game.sample_batch(data, jax.random.PRNGKey(2), 64))
    batch["label"] = data["label"][:64]
    leader = setup.leader
    follower = "verifier" if leader == "prover" else "prover"

    def f(theta):
      p = {**params, leader: theta}
      phi = game.follow(setup, p, follower, batch, None)
      return game.loss(setup, leader, {**p, follower: phi}, batch, None)

    g, _ = game.leader_grad(setup, params, batch, None)
    g_steps, _ = game.leader_grad(steps_setup, params, batch, None)
    leaves, tdef = jax.tree.flatten(params[leader])
    rng, eps = np.random.default_rng(0), 1e-7
    for _ in range(3):
      d = tdef.unflatten([jnp.asarray(rng.normal(size=x.shape)) for x in leaves])
      plus = jax.tree.map(lambda t, v: t + eps * v, params[leader], d)
      minus = jax.tree.map(lambda t, v: t - eps * v, params[leader], d)
      fd = float(f(plus) - f(minus)) / (2 * eps)
      along = [sum(float(jnp.vdot(x, y)) for x, y in zip(jax.tree.leaves(grad),
                                                         jax.tree.leaves(d)))
               for grad in (g, g_steps)]
      assert abs(along[0] - fd) <= 1e-7, (along, fd)
      assert abs(along[1] - fd) > 1e-5, (along, fd)


def test_discrete_message_is_one_hot_with_softmax_gradient():
  logits = jnp.array([[0.1, 2.0, -1.0]])
  m = players.message(logits, "discrete", 1.0, None)
  np.testing.assert_allclose(m, [[0.0, 1.0, 0.0]], atol=1e-7)   # hard + (soft - soft)
  g = jax.grad(lambda z: (players.message(z, "discrete", 1.0, None) * jnp.arange(3.0)).sum())(
      logits)
  want = jax.grad(lambda z: (jax.nn.softmax(z) * jnp.arange(3.0)).sum())(logits)
  np.testing.assert_allclose(g, want, rtol=1e-6)


@pytest.mark.parametrize("key, value, match", [
    ("tasks", ("bec", "mnist"), "config.tasks"),
    ("formulations", ("verifier_leads:magic",), "config.formulations"),
    ("game.message", "morse", "config.game.message"),
    ("game.chunk", 7, "config.game.chunk"),
    ("bec.erasure", 1.5, "config.bec.erasure"),
])
def test_bad_config_values_name_the_key(key, value, match):
  cfg = anil.get_config("smoke")
  group, _, name = key.rpartition(".")
  with cfg.unlocked():
    (cfg[group] if group else cfg)[name] = value
  with pytest.raises(ConfigError, match=match):
    run.validate(cfg)


def test_interval_is_student_t():
  iv = run.interval([0.1, 0.2, 0.3])
  assert iv["mean"] == pytest.approx(0.2)
  assert iv["hi"] - iv["mean"] == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-6)
