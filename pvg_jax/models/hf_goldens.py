"""Tiny random Hugging Face checkpoints and their golden logits, for the loader's parity test.

    pip install -e ".[parity]"       # torch (CPU) and transformers
    python -m pvg_jax.models.hf_goldens --out tests/data/hf
    python -m pvg_jax.models.hf_goldens --check      # the parity table (no torch needed)

For each family a model is built by `transformers` from a config (nothing is downloaded),
its weights set to random values large enough that every part matters (matrices with
std 1/sqrt(fan_in), norm weights around 1 or 0, biases), saved with `save_pretrained`
(Llama in several safetensors shards with an index), and run in float32 on a random prompt
of PROMPT_LEN tokens. `golden.npz` keeps the prompt and transformers' logits;
tests/test_hf.py loads the checkpoint with `pvg_jax.models.hf` and compares.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

PROMPT_LEN = 160
COMMON = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=512)
CONFIGS = {
    # GQA 4:2, Llama 3 rope scaling (the 64-token original context makes every band act)
    "llama": dict(num_key_value_heads=2, rms_norm_eps=1e-5, tie_word_embeddings=False,
                  rope_parameters=dict(rope_type="llama3", rope_theta=500_000.0, factor=8.0,
                                       low_freq_factor=1.0, high_freq_factor=4.0,
                                       original_max_position_embeddings=64)),
    # qkv biases, tied embeddings, base 1e6
    "qwen2": dict(num_key_value_heads=2, rms_norm_eps=1e-6, tie_word_embeddings=True,
                  rope_parameters=dict(rope_type="default", rope_theta=1_000_000.0)),
    # multi-query 4:1, head size 32 != 64 / 4, (1 + w) norms, sqrt(d) embedding scale
    "gemma": dict(num_key_value_heads=1, head_dim=32, rms_norm_eps=1e-6,
                  tie_word_embeddings=True),
}


def build(family: str, seed: int = 0):
  import torch
  import transformers
  config_cls = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config,
                "gemma": transformers.GemmaConfig}[family]
  config = config_cls(**COMMON, **CONFIGS[family])
  torch.manual_seed(seed)
  model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
  with torch.no_grad():
    for name, p in model.named_parameters():
      if name.endswith("norm.weight"):
        p.copy_((0.0 if family == "gemma" else 1.0) + 0.2 * torch.randn_like(p))
      elif name.endswith("bias"):
        p.copy_(0.2 * torch.randn_like(p))
      else:
        p.copy_(torch.randn_like(p) * p.shape[-1] ** -0.5)
  return model.eval()


def write(out: pathlib.Path, family: str) -> None:
  import torch
  model = build(family)
  directory = out / family
  shard = "150KB" if family == "llama" else "10GB"
  model.save_pretrained(directory, safe_serialization=True, max_shard_size=shard)
  tokens = np.random.default_rng(1).integers(0, COMMON["vocab_size"], (1, PROMPT_LEN))
  with torch.no_grad():
    logits = model(torch.as_tensor(tokens)).logits.numpy()
  np.savez_compressed(directory / "golden.npz", tokens=tokens.astype(np.int32),
                      logits=logits.astype(np.float32))
  files = sorted(p.name for p in directory.iterdir())
  print(f"{family}: {len(files)} files in {directory}, logits {logits.shape}, "
        f"|logits| max {np.abs(logits).max():.2f}")


def parity(directory: pathlib.Path, family: str) -> tuple[int, float]:
  """(prompt length, max |our logits - transformers'|) of the golden in `directory`, in
  float32 on one device; the pad id's column (never emitted here) left out."""
  import jax
  import jax.numpy as jnp

  from pvg_jax import sharding
  from pvg_jax.models import functional, hf
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  spec, params = hf.load(directory / family, ("lm",), mesh, sharding.DEFAULT_RULES,
                         jax.random.key(0))
  golden = np.load(directory / family / "golden.npz")
  tokens = jnp.asarray(golden["tokens"])
  mask = jnp.ones_like(tokens, bool)
  m = functional.model(spec, params)
  hidden, _ = m(tokens, functional.positions_from_mask(mask), mask)
  ours = np.asarray(m.logits(hidden))[..., :spec.num_tokens]
  keep = np.arange(spec.num_tokens) != (-1 if spec.pad_id is None else spec.pad_id)
  return tokens.shape[1], float(np.abs(ours - golden["logits"])[..., keep].max())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("tests/data/hf"))
  parser.add_argument("--family", choices=sorted(CONFIGS), action="append")
  parser.add_argument("--check", action="store_true",
                      help="print our logits' distance to the goldens in --out instead")
  args = parser.parse_args()
  if args.check:
    print(f"{'family':<8}{'prompt':>8}{'max |diff|':>12}")
  for family in args.family or sorted(CONFIGS):
    if args.check:
      length, diff = parity(args.out, family)
      print(f"{family:<8}{length:>8}{diff:>12.2e}")
    else:
      write(args.out, family)


if __name__ == "__main__":
  main()
