"""Hugging Face checkpoint import and export (pvg_jax.models.hf) against transformers' own
logits: tiny random Llama, Qwen2 and Gemma checkpoints with golden logits in tests/data/hf
(regenerate: `python -m pvg_jax.models.hf_goldens`, needs the [parity] extra)."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pvg_jax import cli, sharding
from pvg_jax.models import functional, hf
from tests.conftest import REPO

DATA = REPO / "tests" / "data" / "hf"
FAMILIES = ("llama", "qwen2", "gemma")
RULES = sharding.DEFAULT_RULES


def _load(directory, mesh_shape=(1, 1, 1), heads=("lm",), **kw):
  mesh = sharding.make_mesh(mesh_shape, jax.devices()[:int(np.prod(mesh_shape))])
  return hf.load(directory, heads, mesh, RULES, jax.random.key(0), **kw)


def _logits(spec, params, tokens) -> np.ndarray:
  """Our logits over the checkpoint's vocabulary, with the pad id's column (which this
  project never emits, so it is masked) set to transformers' convention: left out."""
  tokens = jnp.asarray(tokens)
  mask = jnp.ones_like(tokens, bool)
  m = functional.model(spec, params)
  hidden, _ = m(tokens, functional.positions_from_mask(mask), mask)
  return np.asarray(m.logits(hidden))[..., :spec.num_tokens]


def _max_diff(spec, ours, golden) -> float:
  keep = np.arange(spec.num_tokens) != (-1 if spec.pad_id is None else spec.pad_id)
  return float(np.abs(ours[..., keep] - golden[..., keep]).max())


@pytest.mark.parametrize("mesh_shape", [(1, 1, 1), (2, 2, 2)])
@pytest.mark.parametrize("family", FAMILIES)
def test_logits_match_transformers(family, mesh_shape):
  """f32 logits on a 160-token prompt within 1e-4 of transformers', on one device and
  with the weights split over fsdp x tensor (measured: <= 4e-6 on one device)."""
  golden = np.load(DATA / family / "golden.npz")
  spec, params = _load(DATA / family, mesh_shape)
  assert golden["tokens"].shape[1] >= 128
  assert _max_diff(spec, _logits(spec, params, golden["tokens"]), golden["logits"]) <= 1e-4


def test_the_families_options_are_read_from_their_configs():
  specs = {f: hf.spec_from_config(json.loads((DATA / f / "config.json").read_text()), ("lm",))
           for f in FAMILIES}
  assert (specs["llama"].mlp, specs["llama"].kv_heads, specs["llama"].tie_embeddings,
          specs["llama"].rope_scaling) == ("swiglu", 2, False, (8.0, 1.0, 4.0, 64))
  assert specs["qwen2"].qkv_bias and specs["qwen2"].tie_embeddings
  assert specs["qwen2"].rope_base == 1e6
  gemma = specs["gemma"]
  assert (gemma.mlp, gemma.kv_heads, gemma.dh, gemma.norm_plus_one, gemma.embed_scale,
          gemma.pad_id) == ("geglu", 1, 32, True, True, 0)


def test_each_device_reads_only_its_own_slice(monkeypatch):
  """Loading onto fsdp=2 x tensor=4 reads every sharded matrix in eighths: no read is of a
  whole tensor that the mesh splits."""
  reads = []
  real = hf.SafetensorsDir.read

  def read(self, name, index=()):
    out = real(self, name, index)
    reads.append((name, out.size, int(np.prod(self.shape(name)))))
    return out
  monkeypatch.setattr(hf.SafetensorsDir, "read", read)
  spec, params = _load(DATA / "llama", (1, 2, 4))
  q = [(size, total) for name, size, total in reads if name.endswith("q_proj.weight")]
  assert q and all(size * 8 == total for size, total in q)
  assert params["block_0"]["wq"].sharding.spec == jax.sharding.PartitionSpec("fsdp", "tensor")


def test_heads_the_checkpoint_lacks_are_initialized(tmp_path):
  spec, params = _load(DATA / "qwen2", heads=("lm", "value"))
  assert params["value_head"].shape == (64, 1) and float(jnp.abs(params["value_head"]).sum())
  spec, params = _load(DATA / "llama", heads=("score",))     # a verifier: LM head not read
  assert "lm_head" not in params and params["score_head"].shape == (64, 1)


@pytest.mark.parametrize("family", ["llama", "gemma"])
def test_export_reads_back_identically_and_in_shards(family, tmp_path):
  spec, params = _load(DATA / family)
  config = json.loads((DATA / family / "config.json").read_text())
  hf.save(tmp_path / "out", spec, params, config, max_shard_bytes=100_000)
  assert (tmp_path / "out" / hf.INDEX).exists()
  spec2, params2 = _load(tmp_path / "out")
  assert spec2 == spec
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(params2), jax.device_get(params))


def test_bfloat16_export_loads_as_the_rounded_weights(tmp_path):
  spec, params = _load(DATA / "qwen2")
  config = json.loads((DATA / "qwen2" / "config.json").read_text())
  hf.save(tmp_path / "bf16", spec, params, config, dtype="bfloat16")
  header = hf.SafetensorsDir(tmp_path / "bf16").entries["model.embed_tokens.weight"][1]
  assert header["dtype"] == "BF16"
  _, loaded = _load(tmp_path / "bf16")
  rounded = jax.tree.map(lambda x: np.asarray(x).astype(jnp.bfloat16).astype(np.float32),
                         jax.device_get(params))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(loaded), rounded)


def test_transformers_reads_our_export():
  """With the [parity] extra: transformers loads what `save` wrote and computes the same
  logits as the goldens."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  import tempfile
  with tempfile.TemporaryDirectory() as out:
    spec, params = _load(DATA / "qwen2")
    config = json.loads((DATA / "qwen2" / "config.json").read_text())
    hf.save(out, spec, params, config)
    model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    golden = np.load(DATA / "qwen2" / "golden.npz")
    with torch.no_grad():
      logits = model(torch.as_tensor(golden["tokens"]).long()).logits.numpy()
  assert np.abs(logits - golden["logits"]).max() <= 1e-5


def _copy(family, tmp_path):
  shutil.copytree(DATA / family, tmp_path / family)
  return tmp_path / family


def _edit_config(directory, **changes):
  config = json.loads((directory / "config.json").read_text())
  config.update(changes)
  (directory / "config.json").write_text(json.dumps(config))


def _errors(directory) -> str:
  with pytest.raises(hf.CheckpointFormatError) as e:
    _load(directory)
  message = cli.user_error_message(e.value)
  assert message is not None and "\n" not in message
  return message


def test_a_shape_mismatch_names_the_tensor_file_and_shape(tmp_path):
  directory = _copy("qwen2", tmp_path)
  _edit_config(directory, intermediate_size=96)
  assert _errors(directory) == (
      f"{directory / 'model.safetensors'}: tensor model.layers.0.mlp.down_proj.weight has "
      "shape (64, 128), expected (64, 96)")


def test_a_missing_and_a_left_over_tensor_are_named(tmp_path):
  directory = _copy("gemma", tmp_path)
  _edit_config(directory, num_hidden_layers=3)
  assert "tensor model.layers.2.input_layernorm.weight is missing (expected shape (64,))" in (
      _errors(directory))
  _edit_config(directory, num_hidden_layers=1)
  assert _errors(directory).endswith(
      "tensor model.layers.1.input_layernorm.weight is not part of a gemma model of this "
      "config (9 such tensors)")


@pytest.mark.parametrize("changes, expected", [
    ({"model_type": "gemma2"}, "model_type 'gemma2' is not supported"),
    ({"hidden_act": "relu"}, "activation 'relu'"),
    ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4}}, "rope type 'yarn'"),
    ({"attention_bias": True}, "attention_bias=true is not supported for llama"),
])
def test_unsupported_configs_are_refused_by_name(tmp_path, changes, expected):
  directory = _copy("llama", tmp_path)
  _edit_config(directory, **changes)
  assert f"{directory / 'config.json'}: {expected}" in _errors(directory)


def test_no_weights_and_a_damaged_header_are_one_line(tmp_path):
  directory = _copy("qwen2", tmp_path)
  (directory / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
  assert "not a safetensors file" in _errors(directory)
  (directory / "model.safetensors").unlink()
  assert _errors(directory) == f"{directory}: no model.safetensors or {hf.INDEX}"


@pytest.mark.parametrize("family", FAMILIES)
def test_config_for_reads_back_as_the_same_spec(family):
  spec = hf.spec_from_config(json.loads((DATA / family / "config.json").read_text()), ("lm",))
  assert hf.spec_from_config(hf.config_for(spec, family, pad_token_id=spec.pad_id),
                             ("lm",)) == spec


def test_published_architectures_have_their_published_sizes():
  """configs/hf_architectures: the config.json of public checkpoints, read as specs; the
  parameter counts are the published ones (0.49B, 1.54B, 1.24B, 8.03B, 2.51B)."""
  counts = {p.name: functional.count_params(hf.spec_from_config(hf.read_config(p), ("lm",)))
            for p in sorted((REPO / "configs" / "hf_architectures").iterdir()) if p.is_dir()}
  assert {k: round(v / 1e9, 2) for k, v in counts.items()} == {
      "gemma-2b": 2.51, "llama-3.1-8b": 8.03, "llama-3.2-1b": 1.24, "qwen2.5-0.5b": 0.49,
      "qwen2.5-1.5b": 1.54}


def test_a_verifier_exports_with_its_score_head(tmp_path):
  """A verifier (LM trunk + score head) saved as ForSequenceClassification reads back
  with the same head; with the [parity] extra, transformers scores it the same."""
  spec, params = _load(DATA / "llama", heads=("score",))
  config = json.loads((DATA / "llama" / "config.json").read_text())
  hf.save(tmp_path / "v", spec, params, config)
  saved = json.loads((tmp_path / "v" / "config.json").read_text())
  assert saved["architectures"] == ["LlamaForSequenceClassification"]
  assert saved["num_labels"] == 1
  _, loaded = _load(tmp_path / "v", heads=("score",))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(loaded), jax.device_get(params))
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  model = transformers.AutoModelForSequenceClassification.from_pretrained(
      tmp_path / "v", dtype=torch.float32)
  tokens = np.random.default_rng(0).integers(1, 256, (1, 40))   # no pad id: one row
  with torch.no_grad():
    theirs = model(torch.as_tensor(tokens)).logits.numpy()[:, 0]
  t = jnp.asarray(tokens)
  ours = np.asarray(functional.scores(spec, loaded, t, jnp.ones_like(t, bool)))
  np.testing.assert_allclose(ours, theirs, atol=1e-5)
