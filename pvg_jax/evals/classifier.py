"""Small frozen scorers trained once on labelled sequences: the model judges and the
helpful-vs-sneaky separability probe.

Both are a transformer with a score head trained with the cross-entropy loss of METHOD 1.1
(sigmoid(V) against a binary label, plus lam * E V^2) on same-problem (positive, negative)
pairs, so the classes are balanced whatever their counts and the problem itself is no cue.
V > 0 is the classifier's verdict. One jitted step, fixed shapes: one compile per (size, batch).
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from pvg_jax import sharding
from pvg_jax.models import functional
from pvg_jax.models.transformer import ModelSpec
from pvg_jax.training import state as train_state
from pvg_jax.training import steps

LAM = 1e-3   # weight of E V^2 (keeps scores near 0 where the data do not decide)


def optimizer_config(num_steps: int, lr: float) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(steps=num_steps, lr=lr, warmup_steps=num_steps // 10,
                                        weight_decay=0.01, grad_clip=1.0))


def train(spec: ModelSpec, tokens: np.ndarray, kv_mask: np.ndarray, labels: np.ndarray,
          groups: np.ndarray, num_steps: int, batch: int, lr: float, seed: int,
          mesh: Mesh) -> dict:
  """Params of a scorer trained from scratch (seed) to give V > 0 to `labels` == True.

  tokens/kv_mask: [N, T] sequences as the scorer sees them; labels: [N] bool; groups: [N]
  problem ids. Each step draws `batch` groups that hold both classes and one positive and
  one negative row of each (a same-problem contrast, as the game's verifier sees it):
  L = CE(sigmoid V, label) + LAM E V^2.
  """
  labels = np.asarray(labels, bool)
  pairs = []
  for g in np.unique(groups):
    sel = np.flatnonzero(groups == g)
    pos, neg = sel[labels[sel]], sel[~labels[sel]]
    if len(pos) and len(neg):
      pairs.append((pos, neg))
  if not pairs:
    raise ValueError(f"a classifier needs groups holding both classes; none of "
                     f"{len(np.unique(groups))} groups does")
  rules = sharding.DEFAULT_RULES
  tx = train_state.make_optimizer(optimizer_config(num_steps, lr))
  shardings = train_state.spec_state_shardings(spec, tx, mesh, rules)
  params = functional.init_params(spec, jax.random.key(seed), mesh, rules)
  state = train_state.create_state(tx, params, shardings)
  correct = np.tile([[True, False]], (batch, 1))

  def make_batch(step: int) -> dict:
    rng = np.random.default_rng([seed, step])
    picked = [pairs[i] for i in rng.integers(len(pairs), size=batch)]
    rows = np.array([[rng.choice(pos), rng.choice(neg)] for pos, neg in picked]).reshape(-1)
    return {"tokens": tokens[rows], "kv_mask": kv_mask[rows], "correct": correct,
            "valid": np.ones_like(correct)}

  step_fn = steps.jit_step(steps.make_verifier_step(spec, tx, "cross_entropy", LAM), shardings,
                           make_batch(0), mesh, rules)
  for step in range(num_steps):
    state, _ = step_fn(state, make_batch(step))
  return state["params"]


def scores(spec: ModelSpec, params, tokens: np.ndarray, kv_mask: np.ndarray,
           batch: int = 256) -> np.ndarray:
  """[N] scores in fixed-size batches (one compile)."""
  fn = _score_fn(spec)
  n = len(tokens)
  if not n:
    return np.zeros(0, np.float32)
  pad = (-n) % batch
  tokens = np.concatenate([tokens, np.repeat(tokens[-1:], pad, 0)]) if pad else tokens
  kv_mask = np.concatenate([kv_mask, np.repeat(kv_mask[-1:], pad, 0)]) if pad else kv_mask
  out = [fn(params, tokens[s:s + batch], kv_mask[s:s + batch])
         for s in range(0, len(tokens), batch)]
  return np.concatenate(jax.device_get(out))[:n]


_SCORE_FNS: dict = {}


def _score_fn(spec: ModelSpec):
  if spec not in _SCORE_FNS:
    _SCORE_FNS[spec] = jax.jit(lambda p, t, m: functional.scores(spec, p, t, m))
  return _SCORE_FNS[spec]
