"""Tiny random checkpoints in a pretrained family's format, for the GSM8K path on a CPU.

    python -m pvg_jax.models.hf_tiny --data ../shared/data/gsm8k --out configs/gsm8k_tiny

writes `tokenizer.json` (a byte-level BPE of TOKENIZER_VOCAB tokens trained on GSM8K's
train split, with the family's special tokens) and two Hugging Face checkpoints that
`pvg_jax.models.hf.load` reads like a downloaded one: `prover/` (TINY_PROVER) and
`verifier/` (TINY_VERIFIER, ~1/8 of the prover's compute), randomly initialized (no
torch needed). configs/gsm8k.py:smoke plays the game on the committed copy; a user
replaces the three paths with their own checkpoints.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil

import jax

from pvg_jax import sharding
from pvg_jax.models import functional, hf, hf_tokenizer
from pvg_jax.models.transformer import ModelSpec
from pvg_jax.worlds.gsm8k import checker

TOKENIZER_VOCAB = 1024
# (d_model, n_layers, n_heads, n_kv_heads, d_ff)
TINY_PROVER = (64, 2, 4, 2, 128)
TINY_VERIFIER = (32, 1, 2, 1, 64)
SPECIALS = {"llama": ["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>"],
            "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
            "gemma": ["<pad>", "<eos>", "<bos>", "<unk>"]}


def train_tokenizer(data_dir: pathlib.Path, family: str, path: pathlib.Path) -> None:
  """A byte-level BPE on GSM8K's train questions and solutions (deterministic)."""
  import tokenizers
  from tokenizers import decoders, models, pre_tokenizers, trainers
  texts = [f"Question: {ex.question}\n{ex.solution}"
           for ex in checker.read_jsonl(data_dir / "train.jsonl")]
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  tok.train_from_iterator(texts, trainers.BpeTrainer(
      vocab_size=TOKENIZER_VOCAB, special_tokens=SPECIALS[family], show_progress=False,
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  path.parent.mkdir(parents=True, exist_ok=True)
  tok.save(str(path))


def make(data_dir: str | pathlib.Path, out: str | pathlib.Path, family: str = "llama",
         seed: int = 0) -> None:
  data_dir, out = pathlib.Path(data_dir), pathlib.Path(out)
  train_tokenizer(data_dir, family, out / "tokenizer.json")
  tok = hf_tokenizer.HFTokenizer(out / "tokenizer.json", family)
  ids = {"bos_token_id": tok.bos_id, "eos_token_id": tok.eos_id, "pad_token_id": tok.pad_id}
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  for i, (name, (d, n, h, kv, f)) in enumerate((("prover", TINY_PROVER),
                                                ("verifier", TINY_VERIFIER))):
    spec = ModelSpec(vocab_size=-(-tok.size // 64) * 64, num_tokens=tok.size, d_model=d,
                     n_layers=n, n_heads=h, d_ff=f, heads=("lm",), n_kv_heads=kv,
                     pad_id=tok.pad_id, norm_eps=1e-5, **hf.FAMILIES[family])
    params = functional.init_params(spec, jax.random.key(seed + i), mesh,
                                    sharding.DEFAULT_RULES)
    hf.save(out / name, spec, params, hf.config_for(spec, family, **ids))
    shutil.copy(out / "tokenizer.json", out / name / "tokenizer.json")
    print(f"{out / name}: {functional.count_params(spec):,} parameters")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", type=pathlib.Path, required=True, help="GSM8K jsonl dir")
  parser.add_argument("--out", type=pathlib.Path, required=True)
  parser.add_argument("--family", choices=sorted(hf.FAMILIES), default="llama")
  args = parser.parse_args()
  make(args.data, args.out, args.family)


if __name__ == "__main__":
  main()
