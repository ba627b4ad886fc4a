"""Batched KV-cache sampling with fixed shapes: one prefill, then a while_loop of decodes.

Prompts are left-padded to prompt_len so every row decodes its n-th token at the same
column; the cache is allocated once at prompt_len + solution_len. The loop stops as soon as
every row has emitted <eos> (rows that finished earlier keep emitting pad at no extra cost
to the others), so short solutions do not pay for solution_len decode steps.

Returned log-probs are those of the model's own distribution (temperature 1, no top-k): the
policy that PPO trains. Temperature and top-k only shape exploration/evaluation sampling;
with the defaults (1.0, 0) the two coincide.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pvg_jax import sharding
from pvg_jax.models import functional
from pvg_jax.models.transformer import ModelSpec, empty_cache, positions_from_mask


class Samples(NamedTuple):
  """tokens/logprobs/mask: [B, solution_len]; mask is True up to and including <eos>."""

  tokens: jax.Array
  logprobs: jax.Array
  mask: jax.Array


def sample(spec: ModelSpec, params, prompts: jax.Array, key: jax.Array, *,
           solution_len: int, eos_id: int, pad_id: int, temperature: float = 1.0,
           top_k: int = 0) -> Samples:
  """Sample one solution per prompt. prompts: [B, P] left-padded int32. Pure; jit it."""
  batch, prompt_len = prompts.shape
  total = prompt_len + solution_len
  m = functional.model(spec, params)
  prompt_mask = prompts != pad_id
  kv_mask = jnp.concatenate([prompt_mask, jnp.zeros((batch, solution_len), bool)], axis=1)
  hidden, cache = m(prompts, positions_from_mask(prompt_mask), kv_mask,
                    empty_cache(spec, batch, total), 0)
  first_logits = m.logits(hidden[:, -1:])[:, 0]
  next_position = prompt_mask.sum(axis=1).astype(jnp.int32)               # [B]

  def pick(logits, key):
    logp = jax.nn.log_softmax(logits, axis=-1)
    shaped = logits / jnp.maximum(temperature, 1e-6)
    if top_k:
      kth = jax.lax.top_k(shaped, top_k)[0][:, -1:]
      shaped = jnp.where(shaped < kth, -jnp.inf, shaped)
    token = jax.random.categorical(key, shaped, axis=-1).astype(jnp.int32)
    if temperature == 0:
      token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return token, jnp.take_along_axis(logp, token[:, None], axis=-1)[:, 0]

  class Carry(NamedTuple):
    step: jax.Array
    logits: jax.Array
    cache: tuple
    kv_mask: jax.Array
    done: jax.Array
    tokens: jax.Array
    logprobs: jax.Array
    mask: jax.Array

  def cond(c: Carry):
    return (c.step < solution_len) & ~jnp.all(c.done)

  def body(c: Carry) -> Carry:
    token, logp = pick(c.logits, jax.random.fold_in(key, c.step))
    live = ~c.done
    token = jnp.where(live, token, pad_id)
    tokens = c.tokens.at[:, c.step].set(token)
    logprobs = c.logprobs.at[:, c.step].set(jnp.where(live, logp, 0.0))
    mask = c.mask.at[:, c.step].set(live)
    column = prompt_len + c.step
    kv_mask = c.kv_mask.at[:, column].set(live)
    hidden, cache = m(token[:, None], (next_position + c.step)[:, None], kv_mask, c.cache,
                      column)
    return Carry(c.step + 1, m.logits(hidden)[:, 0], cache, kv_mask,
                 c.done | (token == eos_id), tokens, logprobs, mask)

  init = Carry(jnp.int32(0), first_logits, cache, kv_mask, jnp.zeros((batch,), bool),
               jnp.full((batch, solution_len), pad_id, jnp.int32),
               jnp.zeros((batch, solution_len), jnp.float32),
               jnp.zeros((batch, solution_len), bool))
  out = jax.lax.while_loop(cond, body, init)
  return Samples(out.tokens, out.logprobs, out.mask)


def make_sampler(spec: ModelSpec, *, solution_len: int, eos_id: int, pad_id: int,
                 temperature: float = 1.0, top_k: int = 0, in_shardings=None,
                 out_shardings=None):
  """sample() jitted once for these static settings: (params, prompts, key) -> Samples."""
  fn = functools.partial(sample, spec, solution_len=solution_len, eos_id=eos_id,
                         pad_id=pad_id, temperature=temperature, top_k=top_k)
  if in_shardings is None:
    return jax.jit(fn, out_shardings=out_shardings)
  return sharding.jit(fn, in_shardings=in_shardings, out_shardings=out_shardings,
                      host_outputs=True)


def naive_sample(spec: ModelSpec, params, prompts: jax.Array, key: jax.Array, *,
                 solution_len: int, eos_id: int, pad_id: int) -> Samples:
  """Reference decoding without a cache: a full forward pass per new token (benchmarks)."""
  batch, prompt_len = prompts.shape
  tokens = jnp.concatenate([prompts, jnp.full((batch, solution_len), pad_id, jnp.int32)], 1)
  kv_mask = tokens != pad_id

  def body(step, carry):
    tokens, kv_mask, done, logprobs = carry
    m = functional.model(spec, params)
    hidden, _ = m(tokens, positions_from_mask(kv_mask), kv_mask)
    column = prompt_len + step
    logits = m.logits(jax.lax.dynamic_slice_in_dim(hidden, column - 1, 1, axis=1))[:, 0]
    token = jax.random.categorical(jax.random.fold_in(key, step), logits).astype(jnp.int32)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), token[:, None], axis=-1)[:, 0]
    live = ~done
    token = jnp.where(live, token, pad_id)
    tokens = tokens.at[:, column].set(token)
    kv_mask = kv_mask.at[:, column].set(live)
    logprobs = logprobs.at[:, step].set(jnp.where(live, logp, 0.0))
    return tokens, kv_mask, done | (token == eos_id), logprobs

  init = (tokens, kv_mask, jnp.zeros((batch,), bool), jnp.zeros((batch, solution_len)))
  tokens, kv_mask, _, logprobs = jax.lax.fori_loop(0, solution_len, body, init)
  return Samples(tokens[:, prompt_len:], logprobs, kv_mask[:, prompt_len:])
