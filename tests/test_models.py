"""Transformer, named sizes and the KV-cache sampler."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pvg_jax import sharding
from pvg_jax.models import functional, sampler, sizes
from pvg_jax.models.transformer import PAD_ID

VOCAB = 157


@pytest.fixture(scope="module")
def prover():
  spec = functional.make_spec("p120k", VOCAB, ("lm", "value"))
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  return spec, functional.init_params(spec, jax.random.key(0), mesh, sharding.DEFAULT_RULES)


def random_prompts(key, batch, length, pad):
  prompts = jax.random.randint(key, (batch, length), 7, VOCAB).astype(jnp.int32)
  n_pad = jax.random.randint(jax.random.fold_in(key, 1), (batch, 1), 0, length // 2)
  return jnp.where(jnp.arange(length)[None] < n_pad, pad, prompts)


def test_size_variants_span_20k_to_7b():
  counts = {name: functional.count_params(functional.make_spec(name, VOCAB, ("score",)))
            for name in sizes.SIZES}
  assert min(counts.values()) < 25_000
  assert counts["p110m"] >= 100_000_000 and counts["p7b"] >= 6_000_000_000
  prover = functional.count_params(functional.make_spec("p120k", VOCAB, ("lm", "value")))
  verifier = functional.count_params(functional.make_spec("v30k", VOCAB, ("score",)))
  assert 100_000 <= prover <= 140_000 and 20_000 <= verifier <= 35_000


def test_every_parameter_has_logical_axes():
  spec = functional.make_spec("p120k", VOCAB, ("lm", "value", "score"))
  shapes, axes = functional.abstract_params(spec), functional.logical_axes(spec)
  for s, a in zip(jax.tree.leaves(shapes), jax.tree.leaves(axes, is_leaf=lambda x:
                                                           isinstance(x, tuple))):
    assert len(a) == len(s.shape)


def test_forward_is_causal_and_ignores_left_padding(prover):
  spec, params = prover
  tokens = random_prompts(jax.random.key(1), 4, 20, PAD_ID)
  mask = tokens != PAD_ID
  lp = functional.token_logprobs(spec, params, tokens, mask, 19)      # columns 1..19
  changed = tokens.at[:, 15:].set(9)
  lp2 = functional.token_logprobs(spec, params, changed, changed != PAD_ID, 19)
  real = np.asarray(mask[:, :14])          # predictions made from a real (non-pad) position
  np.testing.assert_allclose(np.where(real, lp[:, :14], 0), np.where(real, lp2[:, :14], 0),
                             atol=1e-6)
  # the same row with more left padding gives the same log-probs on its real tokens
  row = tokens[0][mask[0]]
  padded = jnp.concatenate([jnp.full((5,), PAD_ID, jnp.int32), row])[None]
  lp_pad = functional.token_logprobs(spec, params, padded, padded != PAD_ID, len(row) - 1)
  np.testing.assert_allclose(lp_pad[0], lp[0][mask[0, 1:]][-(len(row) - 1):], atol=1e-5)


def test_pad_and_unused_ids_are_never_sampled(prover):
  spec, params = prover
  out = sampler.sample(spec, params, random_prompts(jax.random.key(2), 32, 12, PAD_ID),
                       jax.random.key(3), solution_len=20, eos_id=2, pad_id=PAD_ID)
  live = np.asarray(out.tokens)[np.asarray(out.mask)]
  assert (live != PAD_ID).all() and (live < VOCAB).all()


@pytest.mark.parametrize("temperature, top_k", [(1.0, 0), (0.7, 5)])
def test_cached_logprobs_equal_full_forward(prover, temperature, top_k):
  spec, params = prover
  prompts = random_prompts(jax.random.key(4), 16, 24, PAD_ID)
  out = sampler.sample(spec, params, prompts, jax.random.key(5), solution_len=30,
                       eos_id=2, pad_id=PAD_ID, temperature=temperature, top_k=top_k)
  tokens = jnp.concatenate([prompts, out.tokens], axis=1)
  full = functional.token_logprobs(spec, params, tokens, tokens != PAD_ID, 30)
  assert out.mask.sum() > 16
  np.testing.assert_allclose(np.where(out.mask, full, 0), out.logprobs, atol=1e-5)


def test_shared_prompt_pass_equals_row_by_row(prover):
  """Groups of rows sharing a (left-padded) prompt, their solutions padded after <eos>:
  running each prompt once per group (group_size=4) gives the row-by-row log-probs, values
  and parameter gradients up to float rounding."""
  spec, params = prover
  groups, b, solution_len = 3, 4, 10
  prompts = jnp.repeat(random_prompts(jax.random.key(12), groups, 16, PAD_ID), b, axis=0)
  ends = jnp.array([9, 3, 6, 9, 0, 5, 9, 9, 2, 7, 9, 4])[:, None]   # <eos> columns
  cols = jnp.arange(solution_len)[None]
  solutions = jax.random.randint(jax.random.key(13), (groups * b, solution_len), 10, VOCAB)
  solutions = jnp.where(cols == ends, 9, jnp.where(cols > ends, PAD_ID, solutions))
  live = cols <= ends
  tokens = jnp.concatenate([prompts, solutions], axis=1).astype(jnp.int32)
  mask = tokens != PAD_ID

  def loss(params, group_size):
    lp, v = functional.token_logprobs(spec, params, tokens, mask, solution_len, values=True,
                                      group_size=group_size)
    return jnp.where(live, lp + v, 0).sum(), (lp, v)

  grad = jax.jit(jax.value_and_grad(loss, has_aux=True), static_argnums=1)
  (_, (lp1, v1)), g1 = grad(params, 1)
  (_, (lp4, v4)), g4 = grad(params, b)
  np.testing.assert_allclose(lp4, lp1, atol=2e-5)
  np.testing.assert_allclose(v4, v1, atol=2e-5)
  for a, c in zip(jax.tree.leaves(g1), jax.tree.leaves(g4)):
    np.testing.assert_allclose(c, a, atol=2e-4, rtol=1e-3)


def test_tokens_after_eos_are_masked_padding(prover):
  spec, params = prover
  eos = 9
  out = sampler.sample(spec, params, random_prompts(jax.random.key(6), 32, 12, PAD_ID),
                       jax.random.key(7), solution_len=40, eos_id=eos, pad_id=PAD_ID)
  tokens, mask = np.asarray(out.tokens), np.asarray(out.mask)
  for row, m in zip(tokens, mask):
    hits = np.flatnonzero(row == eos)
    end = hits[0] + 1 if len(hits) else len(row)
    assert m[:end].all() and not m[end:].any() and (row[end:] == PAD_ID).all()


def test_cached_sampling_equals_naive_decoding(prover):
  spec, params = prover
  prompts = random_prompts(jax.random.key(8), 8, 16, PAD_ID)
  fast = sampler.sample(spec, params, prompts, jax.random.key(0), solution_len=12, eos_id=2,
                        pad_id=PAD_ID)
  slow = sampler.naive_sample(spec, params, prompts, jax.random.key(0), solution_len=12,
                              eos_id=2, pad_id=PAD_ID)
  np.testing.assert_array_equal(fast.tokens, slow.tokens)
  np.testing.assert_allclose(fast.logprobs, slow.logprobs, atol=1e-5)


def test_sampler_compiles_once(prover):
  spec, params = prover
  compiles = []
  jax.monitoring.register_event_duration_secs_listener(
      lambda event, _, **kw: compiles.append(event)
      if event == "/jax/core/compile/backend_compile_duration" else None)
  fn = sampler.make_sampler(spec, solution_len=10, eos_id=2, pad_id=PAD_ID)
  for i in range(4):
    jax.block_until_ready(fn(params, random_prompts(jax.random.key(i), 8, 12, PAD_ID),
                             jax.random.key(i)))
  first = len(compiles)
  for i in range(4, 8):
    jax.block_until_ready(fn(params, random_prompts(jax.random.key(i), 8, 12, PAD_ID),
                             jax.random.key(i)))
  assert first >= 1 and len(compiles) == first


def test_bfloat16_compute_keeps_float32_masters_and_outputs(prover):
  """compute_dtype="bfloat16": bf16 matmuls on the f32 parameters; log-probs, values and the
  gradient stay float32 and within bf16 rounding of the f32 model; the sampler's cache is bf16
  and its log-probs still match a full bf16 forward pass."""
  spec, params = prover
  bf16 = functional.make_spec("p120k", VOCAB, ("lm", "value"), "bfloat16")
  tokens = random_prompts(jax.random.key(9), 8, 24, PAD_ID)
  mask = tokens != PAD_ID

  def loss(spec, params):
    lp, v = functional.token_logprobs(spec, params, tokens, mask, 12, values=True)
    return lp.sum() + v.sum(), (lp, v)

  grad = jax.jit(jax.value_and_grad(loss, argnums=1, has_aux=True), static_argnums=0)
  (_, (lp32, v32)), g32 = grad(spec, params)
  (_, (lp16, v16)), g16 = grad(bf16, params)
  assert lp16.dtype == v16.dtype == jnp.float32
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(g16))
  # bf16 keeps 8 mantissa bits (relative 2^-8 = 0.004 per rounding): through 2 layers the
  # log-probs move by a few hundredths, far from the f32 noise floor yet far below the
  # ~1-nat differences that training acts on
  err = np.abs(np.asarray(lp16 - lp32))
  assert 1e-4 < err.max() < 0.1, err.max()
  cos = [float(jnp.vdot(a, b) / jnp.linalg.norm(a) / jnp.linalg.norm(b))
         for a, b in zip(jax.tree.leaves(g32), jax.tree.leaves(g16))]
  assert min(cos) > 0.99, min(cos)
  prompts = random_prompts(jax.random.key(10), 8, 16, PAD_ID)
  out = jax.jit(functools.partial(sampler.sample, bf16, solution_len=12, eos_id=2,
                                  pad_id=PAD_ID))(params, prompts, jax.random.key(11))
  assert out.logprobs.dtype == jnp.float32
  full = jax.jit(functional.token_logprobs, static_argnums=(0, 4))(
      bf16, params, jnp.concatenate([prompts, out.tokens], 1),
      jnp.concatenate([prompts != PAD_ID, out.mask], 1), 12)
  np.testing.assert_allclose(np.where(out.mask, full, 0), out.logprobs, atol=0.05)
