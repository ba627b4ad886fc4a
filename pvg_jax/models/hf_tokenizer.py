"""A pretrained family's tokenizer from a local `tokenizer.json`, with its special tokens.

The text <-> ids mapping is the `tokenizers` library's, read from the file a checkpoint
ships (nothing is downloaded). What this project needs on top is three ids, chosen per
family and overridable:

  family  BOS                 EOS (ends a solution)   PAD (never emitted or attended to)
  llama   <|begin_of_text|>   <|end_of_text|>         <|finetune_right_pad_id|>
  qwen2   (none)              <|im_end|>              <|endoftext|>
  gemma   <bos>               <eos>                   <pad>

PAD must differ from EOS and BOS: the game masks PAD out of attention and out of the LM's
distribution, while EOS is what a prover emits to stop (Qwen2's base models use
<|endoftext|> for both, so <|im_end|> ends solutions here). A token missing from the
vocabulary is a one-line error naming it, the family and the file; config.world.bos_token,
eos_token and pad_token override the family's (bos_token "none": no BOS).
"""

from __future__ import annotations

import pathlib

from pvg_jax import cli

SPECIAL_TOKENS: dict[str, tuple[str | None, str, str]] = {
    "llama": ("<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>"),
    "qwen2": (None, "<|im_end|>", "<|endoftext|>"),
    "gemma": ("<bos>", "<eos>", "<pad>"),
}


class TokenizerError(cli.UserError):
  """A tokenizer file or special token that cannot be used; names the file and token."""


class HFTokenizer:
  """encode/decode with a family's BOS, EOS and PAD (see the module docstring)."""

  def __init__(self, path: str | pathlib.Path, family: str, *, bos: str | None = "",
               eos: str = "", pad: str = ""):
    """`path`: a tokenizer.json or the checkpoint directory holding one. bos/eos/pad
    override the family's tokens ("" keeps the default; bos=None: no BOS)."""
    import tokenizers
    path = pathlib.Path(path)
    self.path = path / "tokenizer.json" if path.is_dir() else path
    if family not in SPECIAL_TOKENS:
      raise TokenizerError(f"tokenizer family {family!r}: expected one of "
                           f"{sorted(SPECIAL_TOKENS)}")
    if not self.path.is_file():
      raise TokenizerError(f"tokenizer file not found: {self.path}")
    try:
      self._tok = tokenizers.Tokenizer.from_file(str(self.path))
    except Exception as e:  # noqa: BLE001 (the library raises a bare Exception on bad JSON)
      raise TokenizerError(f"{self.path}: unreadable tokenizer ({str(e).splitlines()[0]})"
                           ) from None
    default_bos, default_eos, default_pad = SPECIAL_TOKENS[family]
    self.family = family
    self.bos_id = self._id(default_bos if bos == "" else bos, "BOS")
    self.eos_id = self._id(eos or default_eos, "EOS")
    self.pad_id = self._id(pad or default_pad, "PAD")
    if self.pad_id in (self.eos_id, self.bos_id):
      raise TokenizerError(f"{self.path}: PAD must differ from EOS and BOS (the game never "
                           "emits PAD); set config.world.pad_token to another token")

  def _id(self, token: str | None, what: str) -> int | None:
    if token is None:
      return None
    i = self._tok.token_to_id(token)
    if i is None:
      raise TokenizerError(f"{self.path}: {what} token {token!r} of {self.family} is not in "
                           f"the vocabulary; set config.world.{what.lower()}_token to this "
                           "tokenizer's own")
    return i

  @property
  def size(self) -> int:
    return self._tok.get_vocab_size(with_added_tokens=True)

  def encode(self, text: str, bos: bool = False) -> list[int]:
    """Token ids of `text` (no special tokens added, except BOS first if `bos` and the
    family has one)."""
    ids = self._tok.encode(text, add_special_tokens=False).ids
    return ([self.bos_id] if bos and self.bos_id is not None else []) + ids

  def decode(self, ids) -> str:
    """The text of `ids` up to the first EOS, without PAD and BOS."""
    out = []
    for i in (int(x) for x in ids):
      if i == self.eos_id:
        break
      if i not in (self.pad_id, self.bos_id):
        out.append(i)
    return self._tok.decode(out, skip_special_tokens=False)
