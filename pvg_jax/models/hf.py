"""Hugging Face checkpoints (Llama, Qwen2, Gemma) into and out of this project's transformer.

A checkpoint directory holds `config.json` and either `model.safetensors` or shards
`model-0000i-of-0000n.safetensors` with `model.safetensors.index.json` (and usually
`tokenizer.json`, see `pvg_jax.tokenizers`). One model definition covers the families;
`spec_from_config` reads what differs into ModelSpec options:

  family  mlp     qkv bias  norm        embeddings          rope
  llama   swiglu  no        w * x       (tied if the config says so)  base, Llama 3 scaling
  qwen2   swiglu  yes       w * x       tied in the small sizes        base
  gemma   geglu   no        (1 + w) * x  * sqrt(d_model), tied          base

plus grouped-query attention, the head size and the norm epsilon from the config. Gemma 2
and 3 (soft-capping, sliding windows, extra norms) and Llama's attention/MLP biases are not
this architecture: they are refused by name rather than loaded wrong.

`load` creates every parameter directly in its NamedSharding with
`jax.make_array_from_callback`: the callback of each local device reads only that shard's
slice of the tensor from a memory map of its file (transposed from torch's [out, in]
layout), so no host ever holds more than its own shards. Tensors are stored in the config's
file dtype (bf16 or f32) and arrive as float32 master weights (or `dtype`). Heads the
checkpoint does not have (the PPO value head, the verifier's score head) are initialized
from `key`. `save` writes the same format back, one tensor gathered at a time; a verifier (score
head) as `<Family>ForSequenceClassification` with one label (`score.weight`), which `load`
reads back with its head.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from jax.sharding import Mesh

from pvg_jax import cli
from pvg_jax.models import functional
from pvg_jax.models.transformer import ModelSpec

FAMILIES = {"llama": dict(mlp="swiglu"),
            "qwen2": dict(mlp="swiglu", qkv_bias=True),
            "gemma": dict(mlp="geglu", norm_plus_one=True, embed_scale=True)}
_ACTIVATION = {"swiglu": "silu", "geglu": "gelu_pytorch_tanh"}
_DTYPES = {"F32": np.float32, "BF16": ml_dtypes.bfloat16, "F16": np.float16}
INDEX = "model.safetensors.index.json"
IGNORED = ("rotary_emb.inv_freq",)    # buffers some exports write; recomputed here


class CheckpointFormatError(cli.UserError):
  """A checkpoint this loader cannot read: names the file, the tensor and what is wrong."""


def spec_from_config(config: dict, heads: tuple[str, ...], compute_dtype: str = "float32",
                     where: str = "config.json") -> ModelSpec:
  """The ModelSpec of a Hugging Face `config.json` (a dict). Unsupported options raise
  CheckpointFormatError naming the key."""
  def fail(message):
    raise CheckpointFormatError(f"{where}: {message}")
  family = config.get("model_type")
  if family not in FAMILIES:
    fail(f"model_type {family!r} is not supported; expected one of {sorted(FAMILIES)}")
  options = FAMILIES[family]
  for key in ("attention_bias", "mlp_bias", "use_sliding_window"):
    if config.get(key):
      fail(f"{key}=true is not supported for {family}")
  act = config.get("hidden_activation") or config.get("hidden_act")
  if family == "gemma" and config.get("hidden_activation") is None and str(
      config.get("transformers_version", "4")).startswith("4"):
    act = "gelu_pytorch_tanh"      # what transformers 4 runs for Gemma whatever hidden_act
  if act != _ACTIVATION[options["mlp"]]:
    fail(f"activation {act!r}: {family} is supported with {_ACTIVATION[options['mlp']]!r}")
  rope = dict(config.get("rope_parameters") or {})          # transformers >= 5
  rope.update(config.get("rope_scaling") or {})             # transformers 4
  rope_type = rope.get("rope_type", rope.get("type", "default"))
  base = float(config.get("rope_theta") or rope.get("rope_theta") or 10_000.0)
  scaling = None
  if rope_type == "llama3":
    scaling = (float(rope["factor"]), float(rope["low_freq_factor"]),
               float(rope["high_freq_factor"]), int(rope["original_max_position_embeddings"]))
  elif rope_type != "default":
    fail(f"rope type {rope_type!r} is not supported (default or llama3)")
  d, n_heads, vocab = config["hidden_size"], config["num_attention_heads"], config["vocab_size"]
  return ModelSpec(
      vocab_size=-(-vocab // 64) * 64, num_tokens=vocab, d_model=d,
      n_layers=config["num_hidden_layers"], n_heads=n_heads,
      d_ff=config["intermediate_size"], heads=tuple(heads), rope_base=base,
      compute_dtype=compute_dtype, n_kv_heads=config.get("num_key_value_heads") or n_heads,
      head_dim=config.get("head_dim") or d // n_heads, qkv_bias=options.get("qkv_bias", False),
      mlp=options["mlp"], norm_eps=float(config.get("rms_norm_eps", 1e-6)),
      norm_plus_one=options.get("norm_plus_one", False),
      embed_scale=options.get("embed_scale", False),
      tie_embeddings=bool(config.get("tie_word_embeddings", family == "gemma")),
      rope_scaling=scaling, pad_id=config.get("pad_token_id"))


def config_for(spec: ModelSpec, family: str, **tokens) -> dict:
  """A Hugging Face config.json (a dict) for `spec` as a `family` model: what
  `spec_from_config` reads back as `spec` (heads and compute dtype aside). `tokens`:
  bos_token_id, eos_token_id, pad_token_id."""
  if family not in FAMILIES or any(getattr(spec, k) != v for k, v in FAMILIES[family].items()):
    raise ValueError(f"spec does not have the {family} family's options {FAMILIES[family]}")
  rope = {"rope_type": "default", "rope_theta": spec.rope_base}
  if spec.rope_scaling is not None:
    factor, low, high, context = spec.rope_scaling
    rope.update(rope_type="llama3", factor=factor, low_freq_factor=low,
                high_freq_factor=high, original_max_position_embeddings=context)
  config = {"model_type": family, "architectures": [_ARCHITECTURES[family]],
            "vocab_size": spec.num_tokens, "hidden_size": spec.d_model,
            "intermediate_size": spec.d_ff, "num_hidden_layers": spec.n_layers,
            "num_attention_heads": spec.n_heads, "num_key_value_heads": spec.kv_heads,
            "head_dim": spec.dh, "rms_norm_eps": spec.norm_eps,
            "tie_word_embeddings": spec.tie_embeddings, "rope_parameters": rope,
            "hidden_act": _ACTIVATION[spec.mlp], "max_position_embeddings": 4096,
            "transformers_version": "5.0.0", **tokens}
  if family == "gemma":
    config["hidden_activation"] = _ACTIVATION[spec.mlp]
  return config


_ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
                  "gemma": "GemmaForCausalLM"}


def tensor_names(spec: ModelSpec) -> dict[tuple[str, ...], tuple[str, bool]]:
  """Our parameter path -> (Hugging Face tensor name, stored transposed)."""
  names = {("embed",): ("model.embed_tokens.weight", False),
           ("final_norm", "scale"): ("model.norm.weight", False)}
  if "lm" in spec.heads and not spec.tie_embeddings:
    names[("lm_head",)] = ("lm_head.weight", True)
  if "score" in spec.heads:             # <Family>ForSequenceClassification, num_labels=1
    names[("score_head",)] = ("score.weight", True)
  mlp = {"w_gate": "gate_proj", "w_up": "up_proj", "w_down": "down_proj"}
  for i in range(spec.n_layers):
    block, hf = f"block_{i}", f"model.layers.{i}"
    names[(block, "attn_norm", "scale")] = (f"{hf}.input_layernorm.weight", False)
    names[(block, "mlp_norm", "scale")] = (f"{hf}.post_attention_layernorm.weight", False)
    for x in "qkvo":
      names[(block, f"w{x}")] = (f"{hf}.self_attn.{x}_proj.weight", True)
    if spec.qkv_bias:
      for x in "qkv":
        names[(block, f"b{x}")] = (f"{hf}.self_attn.{x}_proj.bias", False)
    for ours, theirs in mlp.items():
      names[(block, ours)] = (f"{hf}.mlp.{theirs}.weight", True)
  return names


class SafetensorsDir:
  """The tensors of a checkpoint directory, read lazily: `read(name, index)` returns one
  slice from a memory map of the tensor's file (only the pages the slice touches are read).

  The format: an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
  data_offsets}}, then the data."""

  def __init__(self, directory: str | pathlib.Path):
    self.directory = pathlib.Path(directory)
    index = self.directory / INDEX
    if index.exists():
      weight_map = _read_json(index)["weight_map"]
      files = sorted(set(weight_map.values()))
    elif (self.directory / "model.safetensors").exists():
      files = ["model.safetensors"]
    else:
      raise CheckpointFormatError(f"{self.directory}: no model.safetensors or {INDEX}")
    self.entries: dict[str, tuple[str, dict]] = {}
    self._maps: dict[str, np.memmap] = {}
    for name in files:
      for tensor, entry in _header(self.directory / name).items():
        self.entries[tensor] = (name, entry)

  def shape(self, name: str) -> tuple[int, ...]:
    return tuple(self.entries[name][1]["shape"])

  def where(self, name: str) -> str:
    return str(self.directory / self.entries[name][0])

  def read(self, name: str, index: tuple[slice, ...] = ()) -> np.ndarray:
    file, entry = self.entries[name]
    if entry["dtype"] not in _DTYPES:
      raise CheckpointFormatError(f"{self.where(name)}: tensor {name} has dtype "
                                  f"{entry['dtype']}; expected one of {sorted(_DTYPES)}")
    if file not in self._maps:
      self._maps[file] = np.memmap(self.directory / file, np.uint8, mode="r")
    begin, end = entry["data_offsets"]
    offset = self._header_end(file)
    data = self._maps[file][offset + begin:offset + end].view(_DTYPES[entry["dtype"]])
    return np.asarray(data.reshape(entry["shape"])[index])

  def _header_end(self, file: str) -> int:
    return 8 + int(np.frombuffer(self._maps[file][:8].tobytes(), "<u8")[0])


def read_config(directory: str | pathlib.Path) -> dict:
  """A checkpoint directory's config.json (CheckpointFormatError if absent or unreadable)."""
  path = pathlib.Path(directory) / "config.json"
  if not path.is_file():
    raise CheckpointFormatError(f"{path}: no such file (a Hugging Face checkpoint directory "
                                "holds config.json and its safetensors)")
  return _read_json(path)


def _read_json(path: pathlib.Path) -> dict:
  try:
    return json.loads(path.read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise CheckpointFormatError(f"{path}: unreadable ({e})") from None


def _header(path: pathlib.Path) -> dict:
  """name -> {dtype, shape, data_offsets} of one safetensors file."""
  try:
    with path.open("rb") as f:
      size = int(np.frombuffer(f.read(8), "<u8")[0])
      header = json.loads(f.read(size))
  except (OSError, ValueError, IndexError) as e:
    raise CheckpointFormatError(f"{path}: not a safetensors file ({e})") from None
  header.pop("__metadata__", None)
  return header


def load(directory: str | pathlib.Path, heads: tuple[str, ...], mesh: Mesh, rules,
         key: jax.Array, compute_dtype: str = "float32", dtype=jnp.float32):
  """(ModelSpec, params) of the checkpoint in `directory`, every parameter in its sharding.

  A tensor that is missing, has the wrong shape, or is left over (not used by the model)
  raises CheckpointFormatError naming it, its file and the expected shape."""
  directory = pathlib.Path(directory)
  config = read_config(directory)
  spec = spec_from_config(config, heads, compute_dtype, str(directory / "config.json"))
  files = SafetensorsDir(directory)
  names = tensor_names(spec)
  shapes = functional.abstract_params(spec)
  shardings = functional.param_shardings(spec, mesh, rules)
  used = {hf for hf, _ in names.values()}
  left = sorted(n for n in files.entries if n not in used and not n.endswith(IGNORED)
                and not (n == "lm_head.weight" and "lm" not in heads)
                and not (n == "score.weight" and "score" not in heads))
  if left:
    raise CheckpointFormatError(f"{files.where(left[0])}: tensor {left[0]} is not part of a "
                                f"{config['model_type']} model of this config "
                                f"({len(left)} such tensors)")
  keys = iter(jax.random.split(key, 8))
  unpadded = _unpadded(spec)

  if "score.weight" not in files.entries:
    names.pop(("score_head",), None)        # an LM checkpoint as a verifier's trunk

  def leaf(path, shape, sharding):
    path = tuple(p.key for p in path)
    if path not in names:                   # a head the checkpoint does not have
      init = lambda k: (jax.random.normal(k, shape.shape) * shape.shape[0] ** -0.5  # noqa: E731
                        ).astype(dtype)
      return jax.jit(init, out_shardings=sharding)(next(keys))
    name, transposed = names[path]
    return _sharded(files, name, transposed, shape.shape, unpadded[path], sharding, dtype)

  params = jax.tree_util.tree_map_with_path(leaf, shapes, shardings)
  return spec, params


def _unpadded(spec: ModelSpec) -> dict[tuple[str, ...], tuple[int, ...]]:
  """Our parameter path -> its shape without the vocabulary padding (num_tokens rows)."""
  shapes, axes = functional.abstract_params(spec), functional.logical_axes(spec)
  flat = jax.tree_util.tree_flatten_with_path(shapes)[0]
  flat_axes = jax.tree.leaves(axes, is_leaf=lambda x: isinstance(x, tuple))
  return {tuple(p.key for p in path): tuple(spec.num_tokens if a == "vocab" else n
                                            for a, n in zip(ax, x.shape))
          for (path, x), ax in zip(flat, flat_axes)}


def _sharded(files: SafetensorsDir, name: str, transposed: bool, shape: tuple[int, ...],
             unpadded: tuple[int, ...], sharding, dtype) -> jax.Array:
  """One parameter of `shape` from tensor `name` (stored as `unpadded`, transposed if so),
  read shard by shard; the vocabulary padding beyond num_tokens is zeros."""
  expected = unpadded[::-1] if transposed else unpadded
  if name not in files.entries:
    raise CheckpointFormatError(f"{files.directory}: tensor {name} is missing (expected "
                                f"shape {expected})")
  if files.shape(name) != expected:
    raise CheckpointFormatError(f"{files.where(name)}: tensor {name} has shape "
                                f"{files.shape(name)}, expected {expected}")

  def read(index: tuple[slice, ...]) -> np.ndarray:
    index = tuple(s.indices(n)[:2] for s, n in zip(index, shape))
    out = np.zeros([stop - start for start, stop in index], dtype)
    clipped = tuple(slice(start, min(stop, n)) for (start, stop), n in zip(index, unpadded))
    if all(s.stop > s.start for s in clipped):
      block = files.read(name, clipped[::-1] if transposed else clipped)
      out[tuple(slice(0, s.stop - s.start) for s in clipped)] = (
          block.T if transposed else block).astype(dtype)
    return out
  return jax.make_array_from_callback(shape, sharding, read)


def save(directory: str | pathlib.Path, spec: ModelSpec, params, config: dict,
         dtype: str = "float32", max_shard_bytes: int = 4 << 30,
         gather: Callable | None = None) -> None:
  """Write `params` as a Hugging Face checkpoint: `config` (the imported config.json) and
  safetensors files of at most `max_shard_bytes` with their index. Tensors are gathered
  to the host one at a time; with several processes every process gathers, process 0
  writes."""
  from safetensors.numpy import save_file

  from pvg_jax import files as files_lib
  directory = pathlib.Path(directory)
  gather = gather or _gather
  out_dtype = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}[dtype]
  writer = jax.process_index() == 0
  shards: list[dict[str, np.ndarray]] = [{}]
  size = 0
  unpadded = _unpadded(spec)
  for path, (name, transposed) in tensor_names(spec).items():
    host = gather(_get(params, path))[tuple(slice(0, n) for n in unpadded[path])]
    host = (host.T if transposed else host).astype(out_dtype)
    if size and size + host.nbytes > max_shard_bytes:
      shards.append({})
      size = 0
    if writer:
      shards[-1][name] = np.ascontiguousarray(host)
    size += host.nbytes
  if not writer:
    return
  directory.mkdir(parents=True, exist_ok=True)
  out_config = dict(config, torch_dtype=dtype)
  if "score" in spec.heads:
    family = config["model_type"]
    out_config.update(architectures=[_ARCHITECTURES[family].replace("CausalLM",
                                                                     "SequenceClassification")],
                      num_labels=1)
  files_lib.atomic_write_text(directory / "config.json", json.dumps(out_config, indent=2))
  if len(shards) == 1:
    save_file(shards[0], str(directory / "model.safetensors"), metadata={"format": "pt"})
    return
  weight_map, total = {}, 0
  for i, shard in enumerate(shards):
    name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
    save_file(shard, str(directory / name), metadata={"format": "pt"})
    weight_map.update({k: name for k in shard})
    total += sum(x.nbytes for x in shard.values())
  files_lib.atomic_write_text(directory / INDEX, json.dumps(
      {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))


def _get(params, path: tuple[str, ...]):
  for p in path:
    params = params[p]
  return params


def _gather(x: jax.Array) -> np.ndarray:
  if x.is_fully_addressable:
    return np.asarray(jax.device_get(x))
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))
