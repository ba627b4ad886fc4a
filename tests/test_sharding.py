"""The same jitted steps on 8 fake devices with different meshes give the 1-device result."""

import jax
import numpy as np
import pytest

from pvg_jax import sharding
from pvg_jax.models import functional, sampler
from pvg_jax.training import state as train_state
from pvg_jax.training import steps
from pvg_jax.worlds.arith import world as arith_world

MESHES = [(8, 1, 1), (2, 4, 1), (2, 2, 2), (1, 2, 4)]
RULES = sharding.DEFAULT_RULES


def _run(cfg, mesh):
  """One SFT step, one verifier step and one sampler call on `mesh`."""
  world = arith_world.ArithWorld(cfg.world, cfg.seed)
  batch = world.sft_batch("prover", range(16), [0, 1] * 8, np.random.default_rng(0))
  spec = functional.make_spec("p120k", world.tokenizer.size, ("lm", "value"))
  vspec = functional.make_spec("v30k", world.tokenizer.size, ("score",))
  tx = train_state.make_optimizer(cfg.sft)
  out = {}

  params = functional.init_params(spec, jax.random.key(0), mesh, RULES)
  shardings = train_state.spec_state_shardings(spec, tx, mesh, RULES)
  state = train_state.create_state(tx, params, shardings)
  sft_batch = {"tokens": batch.tokens, "kv_mask": batch.kv_mask, "loss_mask": batch.loss_mask}
  sft = steps.jit_step(steps.make_sft_step(spec, tx), shardings, sft_batch, mesh, RULES)
  for _ in range(2):
    state, metrics = sft(state, sft_batch)
  out["sft_loss"] = metrics["loss"]
  out["sft_params"] = state["params"]

  vparams = functional.init_params(vspec, jax.random.key(1), mesh, RULES)
  vshardings = train_state.spec_state_shardings(vspec, tx, mesh, RULES)
  vstate = train_state.create_state(tx, vparams, vshardings)
  vbatch = {"tokens": world.verifier_view(batch.tokens), "kv_mask": batch.kv_mask,
            "correct": np.tile([[True, False]], (8, 1)), "valid": np.ones((8, 2), bool)}
  vstep = steps.jit_step(steps.make_verifier_step(vspec, tx, "bradley_terry", 0.01),
                         vshardings, vbatch, mesh, RULES)
  vstate, vmetrics = vstep(vstate, vbatch)
  out["verifier_loss"] = vmetrics["loss"]
  out["verifier_params"] = vstate["params"]

  prompts = batch.tokens[:, :world.layout.prompt_len]
  prompt_sh = sharding.batch_sharding(mesh, RULES, prompts.shape)
  fn = sampler.make_sampler(spec, solution_len=world.layout.solution_len,
                            eos_id=world.tokenizer.eos_id, pad_id=world.tokenizer.pad_id,
                            in_shardings=(functional.param_shardings(spec, mesh, RULES),
                                          prompt_sh, sharding.replicated(mesh)))
  out["samples"] = fn(params, prompts, jax.random.key(2))
  return jax.device_get(out)


@pytest.fixture(scope="module")
def reference(smoke_config):
  return _run(smoke_config, sharding.make_mesh((1, 1, 1), jax.devices()[:1]))


@pytest.mark.parametrize("shape", MESHES)
def test_sharded_steps_match_single_device(smoke_config, reference, shape):
  mesh = sharding.make_mesh(shape)
  result = _run(smoke_config, mesh)
  for key in ("sft_loss", "verifier_loss"):
    np.testing.assert_allclose(result[key], reference[key], rtol=1e-5, atol=1e-6)
  for key in ("sft_params", "verifier_params"):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 result[key], reference[key])
  np.testing.assert_allclose(result["samples"].logprobs, reference["samples"].logprobs,
                             atol=1e-4)


def test_parameters_are_actually_sharded():
  mesh = sharding.make_mesh((2, 2, 2))
  spec = functional.make_spec("p120k", 157, ("lm", "value"))
  params = functional.init_params(spec, jax.random.key(0), mesh, RULES)
  w_in = params["block_0"]["w_in"]
  assert w_in.sharding.spec == jax.sharding.PartitionSpec("fsdp", "tensor")
  assert w_in.addressable_shards[0].data.shape == (32, 128)


def test_mesh_errors_name_the_problem():
  with pytest.raises(ValueError, match="needs 16 devices"):
    sharding.make_mesh((4, 4, 1))
  with pytest.raises(ValueError, match="one size per axis"):
    sharding.make_mesh((8, 1))
