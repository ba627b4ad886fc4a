"""Word-level tokenizer of the arith world and the fixed-shape sequence layout.

Every sequence the models see has one layout, shared by SFT, the sampler and the verifier:

    [pad ... pad, <bos>, problem words ..., ROLE, <sep>] [solution words ..., <eos>, pad ...]
     `---------------- prompt_len, left-padded -------'  `------ solution_len, right-padded -'

Left-padding the prompt puts the first solution token at the same column in every row, so a
batch decodes in lock step; the role token always sits at column prompt_len - 2, where the
verifier's input replaces it with <verify> (the verifier never sees the prover's role).

Numbers are single tokens 0..max_number by default; with digits=True each digit is a token
and decoding joins adjacent digits (the language never writes two numbers side by side).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pvg_jax.worlds.arith import problems

PAD, BOS, EOS, SEP = "<pad>", "<bos>", "<eos>", "<sep>"
HELPFUL, SNEAKY, VERIFY = "<helpful>", "<sneaky>", "<verify>"
SPECIALS = (PAD, BOS, EOS, SEP, HELPFUL, SNEAKY, VERIFY)
ROLES = ("helpful", "sneaky")
WORDS = ("has", "times", "as", "many", "more", "fewer", "than", "how", "does", "have",
         ".", "?", "=", "+", "-", "*", ";", "answer")


@dataclasses.dataclass(frozen=True)
class Tokenizer:
  """Maps words to ids and back. Ids: specials, words, names, items, then numbers."""

  max_number: int = 99
  digits: bool = False

  def __post_init__(self):
    numbers = [str(d) for d in range(10)] if self.digits else [
        str(n) for n in range(self.max_number + 1)]
    vocab = (*SPECIALS, *WORDS, *problems.NAMES, *problems.ITEMS, *numbers)
    object.__setattr__(self, "vocab", vocab)
    object.__setattr__(self, "ids", {w: i for i, w in enumerate(vocab)})

  @property
  def size(self) -> int:
    return len(self.vocab)

  @property
  def pad_id(self) -> int:
    return self.ids[PAD]

  @property
  def eos_id(self) -> int:
    return self.ids[EOS]

  def role_id(self, role: str) -> int:
    if role not in ROLES:
      raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
    return self.ids[HELPFUL if role == "helpful" else SNEAKY]

  def encode(self, text: str) -> list[int]:
    """Text (words separated by spaces) to ids; raises on a word outside the vocabulary."""
    ids = []
    for word in text.split():
      if self.digits and word.isdigit():
        ids.extend(self.ids[d] for d in word)
      elif word in self.ids:
        ids.append(self.ids[word])
      else:
        raise ValueError(f"word {word!r} is not in the arith vocabulary "
                         f"(max_number={self.max_number}, digits={self.digits})")
    return ids

  def words(self, ids) -> list[str]:
    """Ids to words, joining digit tokens into numbers; ids outside the vocab become '<unk>'."""
    out: list[str] = []
    previous_digit = False
    for i in np.asarray(ids).tolist():
      word = self.vocab[i] if 0 <= i < self.size else "<unk>"
      is_digit = self.digits and word.isdigit()
      if is_digit and previous_digit:
        out[-1] += word
      else:
        out.append(word)
      previous_digit = is_digit
    return out

  def decode(self, ids) -> str:
    return " ".join(self.words(ids))

  def solution_words(self, ids) -> list[str]:
    """The words of a sampled solution: everything before the first <eos>, pads dropped."""
    words = []
    for word in self.words(ids):
      if word == EOS:
        break
      if word != PAD:
        words.append(word)
    return words


@dataclasses.dataclass(frozen=True)
class Layout:
  """Fixed sequence shapes: prompt_len + solution_len = seq_len."""

  prompt_len: int
  solution_len: int

  @property
  def seq_len(self) -> int:
    return self.prompt_len + self.solution_len

  @property
  def role_column(self) -> int:
    return self.prompt_len - 2


def layout_for(spec: problems.WorldSpec, tokenizer: Tokenizer, solution_slack: int) -> Layout:
  """The smallest layout that fits every problem and canonical solution the spec allows.

  Word counts per sentence: start/distractor 5, "times" 10, "more"/"fewer" 8, question 7;
  clause "p = a op b = v ;" 8, "answer v" + <eos> 3. In digit mode a number may take
  len(str(max_number)) tokens. `solution_slack` extra columns let a prover write longer
  solutions than the canonical ones.
  """
  extra = len(str(tokenizer.max_number)) - 1 if tokenizer.digits else 0
  prompt = (3 + (spec.max_start + spec.max_distractors) * (5 + extra)
            + spec.max_steps * (10 + extra) + 7)
  solution = spec.max_steps * (8 + 3 * extra) + 3 + extra + solution_slack
  return Layout(prompt, solution)


def encode_prompt(tokenizer: Tokenizer, layout: Layout, problem: problems.Problem,
                  role: str) -> np.ndarray:
  """Left-padded prompt ids [prompt_len]."""
  ids = [tokenizer.ids[BOS], *tokenizer.encode(problem.text()), tokenizer.role_id(role),
         tokenizer.ids[SEP]]
  if len(ids) > layout.prompt_len:
    raise ValueError(f"prompt of {len(ids)} tokens exceeds prompt_len={layout.prompt_len}")
  return np.array([tokenizer.pad_id] * (layout.prompt_len - len(ids)) + ids, np.int32)


def encode_solution(tokenizer: Tokenizer, layout: Layout, text: str) -> np.ndarray:
  """Right-padded solution ids [solution_len], ending with <eos>."""
  ids = [*tokenizer.encode(text), tokenizer.eos_id]
  if len(ids) > layout.solution_len:
    raise ValueError(f"solution of {len(ids)} tokens exceeds solution_len="
                     f"{layout.solution_len}: {text!r}")
  return np.array(ids + [tokenizer.pad_id] * (layout.solution_len - len(ids)), np.int32)
