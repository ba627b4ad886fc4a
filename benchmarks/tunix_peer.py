"""Peer side of the speed comparison against google-tunix: the same workloads, run by tunix.

    /work/tunix-venv/bin/python -m benchmarks.tunix_peer     # from the repository root

Runs only where `google-tunix` is installed (a separate venv; nothing in `pvg_jax` imports
this file). Every tunix import is local to a function, so the module itself imports
anywhere. Models are tunix's own Llama3 implementation with a tiny custom `ModelConfig`,
randomly initialised (nothing is downloaded), float32 parameters and compute, on CPU.

Prints the tunix model's parameter count, the tokens/s of tunix's KV-cache `Sampler`
(median of 3 calls after a warm-up) and the seconds of one tunix PPO iteration
(`RLCluster` + `PpoLearner`, vanilla rollout; median of 3 after a warm-up).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx

MESH_AXES = ("fsdp", "tp")  # the axis names tunix's default ShardingConfig refers to


class IdTokenizer:
  """A tokenizer over integer ids, with the methods tunix's `TokenizerAdapter` requires.

  Token i is the word "t{i}"; a text is its words joined by single spaces. There is no BOS
  (`bos_id` is None, so tunix's Sampler prepends nothing), and the EOS id is `vocab_size`:
  an id the model's `vocab_size` logits can never produce, so EOS stopping is disabled and
  every row decodes all requested tokens.
  """

  def __init__(self, vocab_size: int, pad_id: int):
    self.vocab_size = vocab_size
    self._pad_id = pad_id

  def encode(self, text: str, **kwargs: Any) -> list[int]:
    """Ids of the words of `text` ("t5 t7" -> [5, 7])."""
    return [int(word[1:]) for word in str(text).split()]

  def decode(self, ids: Sequence[int], **kwargs: Any) -> str:
    """The text of `ids` ([5, 7] -> "t5 t7")."""
    return " ".join(f"t{int(i)}" for i in ids)

  def bos_id(self) -> int | None:
    return None

  def eos_id(self) -> int:
    return self.vocab_size

  def pad_id(self) -> int:
    return self._pad_id

  def rows_to_texts(self, prompts: np.ndarray) -> list[str]:
    """Texts of the rows of a left-padded [B, P] id array, padding dropped."""
    return [self.decode(row[row != self._pad_id].tolist()) for row in np.asarray(prompts)]


class ValueModel(nnx.Module):
  """Critic for tunix's PPO: a tunix Llama3 trunk with a scalar value head.

  The trunk is a `Llama3` built with `weight_tying=True`, so it owns no LM head, and only
  its embedder, decoder layers and final norm are run; the value head maps the final hidden
  state of every position to one float. Called like a tunix model (tokens, positions,
  cache, attention_mask); extra keyword arguments (tunix passes `segment_ids`) are ignored.
  Returns values [B, T, 1], the shape `tunix.rl.common.compute_score` expects.
  """

  def __init__(self, trunk: nnx.Module, *, rngs: nnx.Rngs):
    self.trunk = trunk
    d = trunk.config.embed_dim
    self.value_head = nnx.Linear(
        d, 1, use_bias=False, rngs=rngs,
        kernel_init=nnx.with_partitioning(nnx.initializers.normal(d**-0.5), ("fsdp", None)))

  def __call__(self, input_tokens: jax.Array, positions: jax.Array, cache: Any = None,
               attention_mask: jax.Array | None = None, **kwargs: Any) -> jax.Array:
    x = self.trunk.embedder.encode(input_tokens)
    for layer in self.trunk.layers:
      _, x = layer(x, positions, None, attention_mask)
    return self.value_head(self.trunk.final_norm(x))


def model_config(d_model: int, n_layers: int, n_heads: int, vocab_size: int,
                 weight_tying: bool = False) -> Any:
  """tunix Llama3 `ModelConfig` of a tiny model comparable to pvg_jax's transformer.

  Plain multi-head attention (num_kv_heads = num_heads, head_dim = d_model // n_heads) and a
  SwiGLU MLP with hidden_dim = round(8 d / 3): its 3 matrices of d x h hold as many
  parameters as a 2-matrix GELU MLP with d_ff = 4 d. Llama3's config has no dtype fields:
  its parameters are created float32 and compute runs in the parameters' dtype.
  """
  from tunix.models.llama3 import model as llama3

  return llama3.ModelConfig(
      num_layers=n_layers, vocab_size=vocab_size, embed_dim=d_model,
      hidden_dim=round(8 * d_model / 3), num_heads=n_heads, head_dim=d_model // n_heads,
      num_kv_heads=n_heads, rope_theta=10_000, norm_eps=1e-6, weight_tying=weight_tying)


def _randomize_mlp(model: nnx.Module, key: jax.Array) -> None:
  """Re-draws the MLP kernels, which tunix's Llama3 initialises to zeros, ~ N(0, 1/fan_in)."""
  for i, layer in enumerate(model.layers):
    for j, name in enumerate(("gate_proj", "up_proj", "down_proj")):
      kernel = getattr(layer.mlp, name).kernel
      shape, dtype = kernel[...].shape, kernel[...].dtype
      kernel[...] = (jax.random.normal(jax.random.fold_in(key, 3 * i + j), shape, dtype)
                     * shape[0] ** -0.5)


def make_model(d_model: int, n_layers: int, n_heads: int, vocab_size: int,
               seed: int = 0) -> nnx.Module:
  """A randomly initialised tunix `Llama3` (float32, untied LM head) of the given size.

  tunix initialises the MLP kernels to zeros; they are re-drawn here so the model is a
  genuinely random one (the FLOPs are the same either way). The model is not placed on a
  mesh: the Sampler needs none, and `RLCluster` reshards every model onto its role's mesh.
  """
  from tunix.models.llama3 import model as llama3

  cfg = model_config(d_model, n_layers, n_heads, vocab_size)
  model = llama3.Llama3(cfg, rngs=nnx.Rngs(params=seed))
  _randomize_mlp(model, jax.random.key(seed + 1_000_003))
  return model


def make_value_model(d_model: int, n_layers: int, n_heads: int, vocab_size: int,
                     seed: int = 0) -> ValueModel:
  """A randomly initialised critic: a Llama3 trunk of the same size and a value head."""
  from tunix.models.llama3 import model as llama3

  cfg = model_config(d_model, n_layers, n_heads, vocab_size, weight_tying=True)
  trunk = llama3.Llama3(cfg, rngs=nnx.Rngs(params=seed))
  _randomize_mlp(trunk, jax.random.key(seed + 1_000_003))
  return ValueModel(trunk, rngs=nnx.Rngs(params=seed + 1))


def param_count(model: nnx.Module) -> int:
  """Number of scalars in the model's `nnx.Param`s."""
  return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def sampling_fn(model: nnx.Module, prompts: np.ndarray, pad_id: int,
                new_tokens: int) -> Callable[[], int]:
  """Zero-arg callable: tunix's KV-cache `Sampler` decodes `new_tokens` for every prompt row.

  prompts: [B, P] int32, left-padded with pad_id. They go to the Sampler as texts (its API
  takes strings; see `IdTokenizer`), made once here; the Sampler's own per-call host work
  (tokenizing the texts, left-padding to `max_prompt_length`, decoding the outputs back to
  texts) is inside the timed call. `max_prompt_length=P` is passed so the prompt is not
  bucketed to the next power of two, and the KV cache holds exactly P + new_tokens.
  Temperature-1 sampling from the full distribution (top_p=1, no top_k: tunix then samples
  with one `jax.random.categorical`). EOS stopping is disabled (the EOS id is `vocab_size`,
  which cannot be sampled) and the pad id is passed as a forbidden token (as pvg_jax's model
  never predicts padding), so every row generates exactly `new_tokens` tokens.

  The Sampler's prefill and decode functions are `jax.jit`s created once in its constructor,
  so every call after the first reuses their compilations (each call varies the seed, which
  is a traced argument). Returns the number of generated tokens, counted from the output.
  """
  from tunix.generate import sampler as sampler_lib

  cfg = model.config
  batch, prompt_len = prompts.shape
  tokenizer = IdTokenizer(cfg.vocab_size, pad_id)
  sampler = sampler_lib.Sampler(
      model, tokenizer,
      sampler_lib.CacheConfig(cache_size=prompt_len + new_tokens, num_layers=cfg.num_layers,
                              num_kv_heads=cfg.num_kv_heads, head_dim=cfg.head_dim))
  texts = tokenizer.rows_to_texts(prompts)
  seeds = itertools.count()

  def run() -> int:
    out = sampler(texts, max_generation_steps=new_tokens, max_prompt_length=prompt_len,
                  echo=False, temperature=1.0, top_p=1.0, top_k=None, seed=next(seeds),
                  eos_tokens=[tokenizer.eos_id()], forbidden_tokens=[pad_id])
    return int(sum(len(t) for t in out.tokens))

  return run


def token_fraction_reward(target: str = "t7") -> Callable[..., list[float]]:
  """Reward fn for tunix: the fraction of a completion's tokens equal to `target`.

  A cheap deterministic Python function of the decoded completion text, far cheaper than
  the verifier model that scores solutions in pvg_jax; tunix calls it on the host.
  """

  def reward(prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]:
    return [float(np.mean([w == target for w in c.split()])) if c.split() else 0.0
            for c in completions]

  return reward


def ppo_iteration_fn(d_model: int, n_layers: int, n_heads: int, vocab_size: int,
                     prompts: np.ndarray, pad_id: int, new_tokens: int,
                     seed: int = 0) -> Callable[[], int]:
  """Zero-arg callable: one tunix PPO iteration on the batch of len(prompts) prompts.

  Built from tunix's own classes: `RLCluster` (actor, reference = a copy of the actor's
  initial weights, critic = `ValueModel` with the same trunk size, the vanilla rollout
  engine, one 1-device ("fsdp", "tp") mesh for every role) and `PpoLearner`. One call:
  rollout (`new_tokens` per prompt, temperature 1, EOS disabled as in `sampling_fn`; the
  pad id is not forbidden here, because tunix's RolloutConfig has no such knob), reference
  and old-policy log-probs, critic values, the `token_fraction_reward` of every completion
  (cheaper than a verifier model), KL penalty (beta 0.05, tunix's default low_var_kl) in the
  per-token reward, GAE (gamma 1, lambda 0.95), then 1 epoch of 1 minibatch (the whole
  batch): one Adam step (lr 1e-5) of the actor (clip eps 0.2) and one of the critic (value
  clip 0.2). Every model pass runs on the whole batch at once (all micro-batch sizes = B).

  Each call runs `learner.train` on a one-batch dataset with `max_steps` raised by one, so
  it does exactly one global step; the trainers' jitted step functions and the Sampler's
  jits persist across calls. Returns the number of actor updates done so far.
  """
  import optax
  from tunix.rl import rl_cluster as rl_cluster_lib
  from tunix.rl.ppo import ppo_learner
  from tunix.rl.rollout import base_rollout

  batch, prompt_len = prompts.shape
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), MESH_AXES)
  actor = make_model(d_model, n_layers, n_heads, vocab_size, seed)
  reference = make_model(d_model, n_layers, n_heads, vocab_size, seed)
  critic = make_value_model(d_model, n_layers, n_heads, vocab_size, seed + 1)
  tokenizer = IdTokenizer(vocab_size, pad_id)

  training_config = rl_cluster_lib.RLTrainingConfig(
      actor_optimizer=optax.adam(1e-5), critic_optimizer=optax.adam(1e-5),
      eval_every_n_steps=10**9, max_steps=1, mini_batch_size=batch,
      rollout_micro_batch_size=batch, compute_logps_micro_batch_size=batch)
  rollout_config = base_rollout.RolloutConfig(
      max_tokens_to_generate=new_tokens, max_prompt_length=prompt_len,
      kv_cache_size=prompt_len + new_tokens, temperature=1.0, top_p=1.0, top_k=None,
      eos_tokens=[tokenizer.eos_id()])
  role = rl_cluster_lib.Role
  cluster_config = rl_cluster_lib.ClusterConfig(
      role_to_mesh={role.ACTOR: mesh, role.CRITIC: mesh, role.REFERENCE: mesh,
                    role.ROLLOUT: mesh},
      rollout_engine="vanilla", offload_to_cpu=False,
      training_config=training_config, rollout_config=rollout_config)
  cluster = rl_cluster_lib.RLCluster(actor=actor, critic=critic, reference=reference,
                                     tokenizer=tokenizer, cluster_config=cluster_config)
  ppo_config = ppo_learner.PpoConfig(
      num_iterations=1, gamma=1.0, gae_lambda=0.95, beta=0.05, epsilon=0.2,
      clip_range_value=0.2)
  learner = ppo_learner.PpoLearner(rl_cluster=cluster, ppo_config=ppo_config,
                                   reward_fns=token_fraction_reward())
  dataset = [{"prompts": np.asarray(tokenizer.rows_to_texts(prompts))}]

  def run() -> int:
    training_config.max_steps = cluster.actor_trainer.train_steps + 1
    learner.train(dataset)
    jax.block_until_ready((nnx.state(cluster.actor_trainer.model),
                           nnx.state(cluster.critic_trainer.model)))
    return cluster.actor_trainer.train_steps

  return run


def _time_calls(fn: Callable[[], Any], calls: int) -> tuple[list[float], Any]:
  """Wall seconds of `calls` successive calls of fn, and the last call's result."""
  times, out = [], None
  for _ in range(calls):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return times, out


def make_prompts(batch: int = 64, prompt_len: int = 65, vocab_size: int = 157,
                 pad_id: int = 0, max_pad: int = 20, seed: int = 0) -> np.ndarray:
  """[batch, prompt_len] int32 random ids in [3, vocab) with a random left pad of 0..max_pad."""
  rng = np.random.default_rng(seed)
  prompts = rng.integers(3, vocab_size, (batch, prompt_len)).astype(np.int32)
  for row, pad in zip(prompts, rng.integers(0, max_pad + 1, batch)):
    row[:pad] = pad_id
  return prompts


def main() -> None:
  vocab, d_model, n_layers, n_heads, new_tokens, pad_id = 157, 256, 6, 8, 64, 0
  prompts = make_prompts(64, 65, vocab, pad_id)
  start = time.perf_counter()

  model = make_model(d_model, n_layers, n_heads, vocab)
  critic = make_value_model(d_model, n_layers, n_heads, vocab)
  print(f"tunix Llama3 d={d_model} L={n_layers} H={n_heads} V={vocab}: "
        f"{param_count(model):,} params (critic {param_count(critic):,})")

  sample = sampling_fn(model, prompts, pad_id, new_tokens)
  times, tokens = _time_calls(sample, 4)
  print(f"sampler calls (s): first {times[0]:.2f}, then {', '.join(f'{t:.3f}' for t in times[1:])}")
  print(f"tunix sampler batch {len(prompts)}: {tokens} tokens, "
        f"{tokens / np.median(times[1:]):.0f} tokens/s ({np.median(times[1:]) * 1e3:.0f} ms)")

  ppo = ppo_iteration_fn(d_model, n_layers, n_heads, vocab, prompts, pad_id, new_tokens)
  times, steps = _time_calls(ppo, 4)
  print(f"PPO iteration calls (s): first {times[0]:.2f}, "
        f"then {', '.join(f'{t:.2f}' for t in times[1:])} ({steps} actor updates)")
  print(f"tunix PPO iteration batch {len(prompts)}: {np.median(times[1:]):.2f} s")
  print(f"total wall {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
  main()
