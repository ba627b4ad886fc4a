"""The profiler summary's FLOP counts and timing (pvg_jax/profiling.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pvg_jax import profiling, sharding
from pvg_jax.models import functional
from pvg_jax.training import state as train_state
from pvg_jax.training import steps


def _flops(fn, *args) -> profiling.Flops:
  return profiling.matmul_flops(jax.jit(fn).trace(*args).jaxpr)


def test_dot_batched_dot_scan_cond_and_while_are_counted():
  x, w = jnp.ones((64, 128)), jnp.ones((128, 32))
  assert _flops(lambda x, w: x @ w, x, w) == (2 * 64 * 128 * 32, 0)
  q, k = jnp.ones((4, 8, 16, 24)), jnp.ones((4, 8, 20, 24))     # [b, h, t, d] x [b, h, s, d]
  assert _flops(lambda q, k: jnp.einsum("bhtd,bhsd->bhts", q, k), q, k).fixed == (
      2 * 4 * 8 * 16 * 20 * 24)
  sq = jnp.ones((128, 128))
  one = 2 * 64 * 128 * 128
  scan = lambda x, w: jax.lax.fori_loop(0, 10, lambda i, x: jnp.tanh(x @ w), x)  # noqa: E731
  assert _flops(scan, x, sq) == (10 * one, 0)
  branch = lambda x, w, p: jax.lax.cond(p, lambda: (x @ w) @ w, lambda: x @ w)  # noqa: E731
  assert _flops(branch, x, sq, True) == (2 * one, 0)
  loop = lambda x, w: jax.lax.while_loop(lambda c: c[0] < 5,  # noqa: E731
                                         lambda c: (c[0] + 1, c[1] @ w), (0, x))[1]
  assert _flops(lambda x, w: loop(x, w) @ w, x, sq) == (one, one)
  assert profiling.Flops(one, one).total(5) == 6 * one


def test_sft_step_flops_equal_the_transformer_formula(smoke_config):
  """The count over the whole jitted SFT step (forward, backward, Adam) equals the
  textbook model FLOPs: 3x the forward's 24 d^2 + 4 T d per position and layer, and
  2 d V per solution position for the LM head (it runs on solution positions only)."""
  from pvg_jax.worlds.arith import world as arith_world
  cfg = smoke_config
  world = arith_world.ArithWorld(cfg.world, cfg.seed)
  spec = functional.make_spec(cfg.prover.size, world.tokenizer.size, ("lm",))
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  tx = train_state.make_optimizer(cfg.sft)
  shardings = train_state.spec_state_shardings(spec, tx, mesh, sharding.DEFAULT_RULES)
  state = jax.eval_shape(lambda p: {"params": p, "opt_state": tx.init(p),
                                    "step": jnp.int32(0)}, functional.abstract_params(spec))
  b, t, s = 8, world.layout.seq_len, world.layout.solution_len
  batch = {"tokens": jax.ShapeDtypeStruct((b, t), jnp.int32),
           "kv_mask": jax.ShapeDtypeStruct((b, t), bool),
           "loss_mask": jax.ShapeDtypeStruct((b, s), bool)}
  step = steps.jit_step(steps.make_sft_step(spec, tx), shardings, batch, mesh,
                        sharding.DEFAULT_RULES)
  counted = profiling.matmul_flops(step.trace(state, batch).jaxpr)
  d, layers, ff = spec.d_model, spec.n_layers, spec.d_ff
  per_position = layers * (2 * 4 * d * d + 2 * 2 * d * ff + 4 * t * d)
  expected = 3 * b * (t * per_position + s * 2 * d * spec.vocab_size)
  assert counted == (pytest.approx(expected, rel=1e-9), 0)


def test_step_profile_times_calls_2_to_n_plus_1_and_counts_trips():
  profile = profiling.StepProfile(steps=3)
  w = jnp.ones((128, 128))

  def decode(x, n):
    return jax.lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] @ w), (0, x))

  fn = profile.wrap("decode", jax.jit(decode), trips=lambda out: int(out[0]))
  x = jnp.ones((64, 128))
  for n in (1, 4, 4, 4, 9):                        # call 1 compiles; calls 2-4 are timed
    fn(x, n)
  (row,) = profile.rows(peak=1e12, n_devices=2)
  assert row["step"] == "decode" and row["calls"] == 3 and row["trips"] == 4
  assert row["gflop"] == pytest.approx(4 * 2 * 64 * 128 * 128 / 1e9)
  assert row["mfu"] == pytest.approx(row["gflop_per_s"] * 1e9 / 2e12)
  assert 0 < row["seconds"] < 10


def test_report_writes_json_and_a_table(tmp_path):
  profile = profiling.StepProfile(steps=2)
  fn = profile.wrap("matmul", jax.jit(lambda a: a @ a))
  assert profile.report(tmp_path / "steps.json", 1, "float32") is None    # nothing timed
  a = jnp.asarray(np.random.default_rng(0).normal(size=(256, 256)), jnp.float32)
  for _ in range(3):
    fn(a)
  table = profile.report(tmp_path / "steps.json", 1, "float32")
  assert table.splitlines()[2].split()[0] == "matmul"
  import json
  saved = json.loads((tmp_path / "steps.json").read_text())
  assert saved["steps"][0]["calls"] == 2 and saved["peak_flops_per_device"] > 0
  assert 0 < saved["steps"][0]["mfu"] < 1.5     # a 256^2 matmul against the 2048^2 peak
