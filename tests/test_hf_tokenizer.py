"""Family tokenizers from a local tokenizer.json: a byte-level BPE trained here on GSM8K's
text, with each family's special tokens."""

import json

import pytest

from pvg_jax import cli
from pvg_jax.models import hf_tokenizer
from pvg_jax.worlds import gsm8k

EXTRA = {"llama": ["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>"],
         "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
         "gemma": ["<pad>", "<eos>", "<bos>", "<unk>"]}


@pytest.fixture(scope="module")
def texts(gsm8k_dir):
  return [ex.question + "\n" + ex.solution for ex in gsm8k.read_jsonl(gsm8k_dir / "train.jsonl")]


def _train(texts, specials, path):
  import tokenizers
  from tokenizers import decoders, models, pre_tokenizers, trainers
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  tok.train_from_iterator(texts, trainers.BpeTrainer(
      vocab_size=1000, special_tokens=specials,
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  tok.save(str(path))
  return path


@pytest.fixture(scope="module")
def tokenizer_files(texts, tmp_path_factory):
  root = tmp_path_factory.mktemp("tokenizers")
  out = {}
  for family, specials in EXTRA.items():
    (root / family).mkdir()
    out[family] = _train(texts[:3000], specials, root / family / "tokenizer.json")
  return out


@pytest.mark.parametrize("family, bos", [("llama", True), ("qwen2", False), ("gemma", True)])
def test_text_round_trips_and_specials_follow_the_family(tokenizer_files, gsm8k_dir, family,
                                                         bos):
  tok = hf_tokenizer.HFTokenizer(tokenizer_files[family].parent, family)
  bos_token, eos_token, pad_token = hf_tokenizer.SPECIAL_TOKENS[family]
  vocab = json.loads(tokenizer_files[family].read_text())["model"]["vocab"]
  assert tok.eos_id == vocab[eos_token] and tok.pad_id == vocab[pad_token]
  assert (tok.bos_id is not None) == bos
  if family == "gemma":
    assert (tok.pad_id, tok.eos_id, tok.bos_id) == (0, 1, 2)
  for ex in list(gsm8k.read_jsonl(gsm8k_dir / "test.jsonl"))[:200]:
    ids = tok.encode(ex.solution, bos=True)
    assert (ids[0] == tok.bos_id) == bos
    assert tok.decode(ids + [tok.eos_id, tok.pad_id, 7]) == ex.solution
    assert tok.decode([tok.pad_id] * 3 + ids) == ex.solution
  assert tok.size >= 1000 - 10


def test_bad_tokenizers_are_one_line(tokenizer_files, tmp_path):
  def error(*args, **kw) -> str:
    with pytest.raises(hf_tokenizer.TokenizerError) as e:
      hf_tokenizer.HFTokenizer(*args, **kw)
    message = cli.user_error_message(e.value)
    assert "\n" not in message
    return message
  llama = tokenizer_files["llama"]
  assert "BOS token '<bos>' of gemma is not in the vocabulary" in error(llama, "gemma")
  assert "PAD must differ from EOS" in error(llama, "llama", pad="<|end_of_text|>")
  assert "family 'mistral'" in error(llama, "mistral")
  assert f"not found: {tmp_path / 'tokenizer.json'}" in error(tmp_path, "llama")
  (tmp_path / "tokenizer.json").write_text("{oops")
  assert "unreadable tokenizer" in error(tmp_path, "llama")
