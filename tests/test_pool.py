"""The verifier's data: balanced draws from the pool and replayed generator pairs."""

import types

import numpy as np
import pytest

from pvg_jax.games import phases
from pvg_jax.verifier.pool import BalancedSampler
from pvg_jax.worlds.arith import world as arith_world


def _source(rows: list[tuple[int, bool]], tag: int) -> dict:
  n = len(rows)
  tokens = np.full((n, 3), tag)
  tokens[:, 1] = np.arange(n)          # row id, to tell draws apart
  return {"problem_index": np.array([p for p, _ in rows]),
          "correct": np.array([c for _, c in rows]), "tokens": tokens,
          "kv_mask": np.ones((n, 3), bool)}


def test_balanced_sampler_draws_balanced_without_replacement_and_skips_one_sided():
  a = _source([(0, True), (0, True), (0, False), (0, False), (1, True), (2, False)], tag=0)
  b = _source([(0, True), (0, False)], tag=1)
  s = BalancedSampler([a, b], [0, 1], np.array([0.5, 0.5]), np.array([0, 1, 2]))
  assert list(s.problems) == [0]
  assert (s.skipped_no_incorrect, s.skipped_no_correct) == (1, 1)
  d = s.batch(np.random.default_rng(0), batch_size=1, k=6)
  assert d.correct.tolist() == [[True] * 3 + [False] * 3]
  # 3 correct solutions exist (2 in a, 1 in b): each is drawn once before any repeats
  picked = {(int(t[0]), int(t[1])) for t in d.tokens[0, :3]}
  assert len(picked) == 3
  with pytest.raises(ValueError, match="even"):
    s.batch(np.random.default_rng(0), 1, 3)


def test_generator_problems_are_canonical_and_flawed_outside_the_heldout(smoke_config):
  world = arith_world.ArithWorld(smoke_config.world, smoke_config.seed)
  ctx = types.SimpleNamespace(cfg=smoke_config, world=world)
  n, k = 6, 4
  tokens, kv_mask, correct = phases.generator_problems(ctx, np.random.default_rng(0), n, k)
  seq = world.layout.seq_len
  assert tokens.shape == kv_mask.shape == (n, k, seq) and correct.shape == (n, k)
  assert correct.tolist() == [[True, True, False, False]] * n
  prompt = world.layout.prompt_len
  held = smoke_config.game.heldout_pool_problems
  for i in range(n):
    # every solution of a row answers one problem (same prompt but for the role token)
    views = world.verifier_view(tokens[i])[:, :prompt]
    assert (views == views[0]).all()
    index = next(j for j in range(held, smoke_config.verifier_pretrain.num_problems)
                 if (world.verifier_view(world.prompts([world.problem("verifier", j)],
                                                       [arith_world.ROLE_HELPFUL]))
                     == views[0]).all())
    problem = world.problem("verifier", index)
    graded = [world.check(problem, tokens[i, j, prompt:]).correct for j in range(k)]
    assert graded == correct[i].tolist()
