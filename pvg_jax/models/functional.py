"""Pure functions around the Flax module: sharded init and forward passes on plain dicts.

Parameters live outside jit as a plain nested dict of arrays (optax, Orbax and
jax.tree all see an ordinary pytree). Inside a jitted function `nnx.merge(graphdef, params)`
rebuilds the module; the graphdef depends only on the ModelSpec and is cached.

Init follows "shapes before arrays": jax.eval_shape gives the parameter shapes and their
logical axes, `pvg_jax.sharding` turns those into NamedShardings, and a jitted init with
out_shardings materializes every parameter directly in its shard (nothing full-size ever
lands on one device).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh

from pvg_jax import sharding
from pvg_jax.models import sizes
from pvg_jax.models.transformer import ModelSpec, Transformer, empty_cache, positions_from_mask

__all__ = ["positions_from_mask"]


def make_spec(size: str, vocab_size: int, heads: tuple[str, ...],
              compute_dtype: str = "float32") -> ModelSpec:
  """ModelSpec of a named size; the vocabulary is padded to a multiple of 64."""
  d, n, h = sizes.size(size)
  return ModelSpec(vocab_size=-(-vocab_size // 64) * 64, num_tokens=vocab_size, d_model=d,
                   n_layers=n, n_heads=h, d_ff=4 * d, heads=tuple(heads),
                   compute_dtype=compute_dtype)


@functools.cache
def graphdef(spec: ModelSpec):
  return nnx.split(nnx.eval_shape(lambda: Transformer(spec, nnx.Rngs(0))))[0]


def _abstract_state(spec: ModelSpec):
  return nnx.state(nnx.eval_shape(lambda: Transformer(spec, nnx.Rngs(0))))


def abstract_params(spec: ModelSpec):
  """ShapeDtypeStructs of the parameters (a plain dict)."""
  return nnx.to_pure_dict(_abstract_state(spec))


def logical_axes(spec: ModelSpec):
  """Logical axis names of every parameter (a plain dict of tuples)."""
  state = _abstract_state(spec)
  return nnx.to_pure_dict(jax.tree.map(lambda v: v.get_metadata()["logical_axes"], state,
                                       is_leaf=lambda x: isinstance(x, nnx.Variable)))


def param_shardings(spec: ModelSpec, mesh: Mesh, rules):
  shapes, axes = abstract_params(spec), logical_axes(spec)
  return jax.tree.map(lambda s, a: sharding.named_sharding(a, s.shape, mesh, rules),
                      shapes, axes, is_leaf=lambda x: isinstance(x, tuple))


def count_params(spec: ModelSpec) -> int:
  return sum(x.size for x in jax.tree.leaves(abstract_params(spec)))


def init_params(spec: ModelSpec, key: jax.Array, mesh: Mesh, rules):
  """Parameters initialized from `key`, each created directly with its sharding."""
  def init(key):
    return nnx.to_pure_dict(nnx.state(Transformer(spec, nnx.Rngs(params=key))))
  return jax.jit(init, out_shardings=param_shardings(spec, mesh, rules))(key)


def model(spec: ModelSpec, params) -> Transformer:
  """The module with `params` in spec.compute_dtype (call inside jit).

  Parameters stay float32 outside (the optimizer's master copy); with compute_dtype
  "bfloat16" they are cast here, so every matmul runs in bf16 and the gradient flows back
  through the cast to float32. Norm statistics, attention softmax and the heads' outputs
  (logits, values, scores) are float32 either way (see `transformer`).
  """
  if spec.compute_dtype != "float32":
    params = jax.tree.map(lambda x: x.astype(spec.compute_dtype), params)
  return nnx.merge(graphdef(spec), params)


def predicting_states(spec: ModelSpec, m: Transformer, tokens: jax.Array,
                      kv_mask: jax.Array, num_predicted: int, group_size: int = 1):
  """Final hidden states [B, num_predicted, d] that predict the last `num_predicted` tokens
  (the states at columns T - num_predicted - 1 ... T - 2).

  group_size = b > 1: consecutive rows come in groups of b that share their first
  P = T - num_predicted columns (b solutions sampled from one prompt, as in a PPO batch).
  The prompt then goes through the model once per group, its keys and values are repeated
  to the group's rows as a KV cache, and only the solutions run per row:
  B/b * P + B * num_predicted token positions instead of B * T, the same result up to
  float rounding (tests/test_models.py). Gradients flow through the shared prompt pass.
  """
  positions = positions_from_mask(kv_mask)
  if group_size == 1:
    hidden, _ = m(tokens, positions, kv_mask)
    return hidden[:, -num_predicted - 1:-1]
  rows, total = tokens.shape
  prompt_len = total - num_predicted
  first = lambda x: x.reshape(rows // group_size, group_size, *x.shape[1:])[:, 0]  # noqa: E731
  prompt_hidden, cache = m(first(tokens)[:, :prompt_len], first(positions)[:, :prompt_len],
                           first(kv_mask), empty_cache(spec, rows // group_size, total), 0)
  cache = jax.tree.map(lambda x: jnp.repeat(x, group_size, axis=0), cache)
  hidden, _ = m(tokens[:, prompt_len:], positions[:, prompt_len:], kv_mask, cache,
                prompt_len)
  last_prompt = jnp.repeat(prompt_hidden[:, -1:], group_size, axis=0)
  return jnp.concatenate([last_prompt, hidden[:, :-1]], axis=1)


def token_logprobs(spec: ModelSpec, params, tokens: jax.Array, kv_mask: jax.Array,
                   num_predicted: int, values: bool = False, group_size: int = 1):
  """log pi(tokens[t] | tokens[<t]) for the last `num_predicted` columns t.

  tokens, kv_mask: [B, T]; 1 <= num_predicted < T (static). Returns [B, num_predicted]
  float32 log-probs, and with values=True also the value-head estimates V(s_t) of the state
  before each of those tokens (read at position t - 1, like the log-prob). Only those
  positions go through the LM head: for solutions, the prompt's logits are never computed.
  group_size > 1: groups of rows share their prompt (`predicting_states`).
  """
  m = model(spec, params)
  hidden = predicting_states(spec, m, tokens, kv_mask, num_predicted, group_size)
  logp = jax.nn.log_softmax(m.logits(hidden), axis=-1)
  picked = jnp.take_along_axis(logp, tokens[:, -num_predicted:, None], axis=-1)[..., 0]
  if not values:
    return picked
  return picked, m.values(hidden)


def scores(spec: ModelSpec, params, tokens: jax.Array, kv_mask: jax.Array) -> jax.Array:
  """Verifier scores V(x, z) [B] of full sequences (read at the last non-pad token)."""
  m = model(spec, params)
  hidden, _ = m(tokens, positions_from_mask(kv_mask), kv_mask)
  return m.score(hidden, kv_mask)
