"""The two toy tasks of Anil et al.'s prover-verifier games (METHOD 4), generated exactly.

Both tasks share one interface, so the players and the game never look at the task:

  prover_input  float32 [N, ...]   what the prover sees: everything.
  windows       float32 [N, P, F]  what the verifier can read at each of the P places the
                                   prover's message may point to (F features per place).
  label         int32   [N]        1: the claim is true (exact, by construction and check).
  certified     bool    [N]        some window alone proves the claim to the verifier. A
                                   sound verifier can accept at most these instances, so
                                   mean(certified | label = 1) is the completeness of the
                                   best sound protocol (the optimum the game can reach).

**Binary erasure channel** (`bec`). The original is a bit string x of `n` bits, each 1 with
probability `density`; the claim is "x contains a run of `run` ones". The verifier sees x
through a binary erasure channel: each bit independently erased with probability
`erasure`, the rest exact. The prover sees x and the erasure pattern. Windows are the
n - run + 1 runs of `run` consecutive positions of the erased copy, each bit one-hot as
(visible 0, visible 1, erased). A window proves the claim iff all its bits are visible 1s;
a window with erasures and no visible 0 is what a liar shows a verifier that trusts it.

**FindThePlus** (`ftp`). A `size` x `size` binary image of noise pixels (each on with
probability `density`); the claim is "the image contains a plus" (a 3x3 patch whose centre
and four edge neighbours are on; corners free). True instances have one planted at a
uniform centre; false instances have every plus in the noise broken by switching off one
of its five pixels at random until none is left. The verifier sees only the 3x3 patch at
the centre the message points to (P = (size - 2)^2 windows of 9 pixels); the prover sees
the image, as its P patches (im2col: together they cover every pixel, and its convolution
becomes a matmul).

Parameters are ours (the paper's sizes were not available) and live in configs/anil.py.
Draws are balanced (half true, half false) and made by numpy from a seed, so a split is a
pure function of (task config, seed, size).
"""

from __future__ import annotations

import dataclasses

import numpy as np

TASKS = ("bec", "ftp")
PLUS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


@dataclasses.dataclass(frozen=True)
class Split:
  prover_input: np.ndarray
  windows: np.ndarray
  label: np.ndarray
  certified: np.ndarray

  def __len__(self) -> int:
    return len(self.label)


def _balanced(draw, n: int, rng: np.random.Generator) -> Split:
  """Draw batches until there are n // 2 instances of each label; keep them in a shuffled
  order."""
  parts, counts = [], [0, 0]
  while min(counts) < n // 2:
    split = draw(max(n, 256), rng)
    parts.append(split)
    counts = [sum(int((p.label == y).sum()) for p in parts) for y in (0, 1)]
  cat = Split(*(np.concatenate([getattr(p, f.name) for p in parts])
                for f in dataclasses.fields(Split)))
  keep = np.concatenate([np.flatnonzero(cat.label == y)[:n // 2] for y in (0, 1)])
  keep = keep[rng.permutation(len(keep))]
  return Split(*(getattr(cat, f.name)[keep] for f in dataclasses.fields(Split)))


# ---------------------------------------------------------------------------------------
# Binary erasure channel


def bec_label(x: np.ndarray, run: int) -> np.ndarray:
  """1 iff the bit string (last axis) contains `run` consecutive ones."""
  sums = np.lib.stride_tricks.sliding_window_view(x, run, axis=-1).sum(-1)
  return (sums == run).any(-1).astype(np.int32)


def _bec_draw(cfg, n: int, rng: np.random.Generator) -> Split:
  x = (rng.random((n, cfg.n)) < cfg.density).astype(np.int32)
  erased = rng.random((n, cfg.n)) < cfg.erasure
  view = np.where(erased, 2, x)                                    # 0, 1 or 2 = erased
  onehot = np.eye(3, dtype=np.float32)[view]                       # [n, bits, 3]
  win = np.lib.stride_tricks.sliding_window_view(onehot, cfg.run, axis=1)  # [n, P, 3, run]
  windows = np.ascontiguousarray(win.transpose(0, 1, 3, 2)).reshape(n, -1, 3 * cfg.run)
  visible_ones = np.lib.stride_tricks.sliding_window_view(view == 1, cfg.run, axis=1)
  certified = visible_ones.all(-1).any(-1)
  prover_input = np.concatenate([x, erased], axis=1).astype(np.float32)
  return Split(prover_input, windows, bec_label(x, cfg.run), certified)


# ---------------------------------------------------------------------------------------
# FindThePlus


def plus_centres(img: np.ndarray) -> np.ndarray:
  """[..., size-2, size-2] bool: a plus is centred at each True (exact check)."""
  patches = np.lib.stride_tricks.sliding_window_view(img, (3, 3), axis=(-2, -1))
  return (patches.astype(bool) | ~PLUS).all((-2, -1))


def _break_pluses(img: np.ndarray, rng: np.random.Generator) -> None:
  """Switch off one random pixel of a plus until the image has none (in place)."""
  offsets = np.argwhere(PLUS)
  while True:
    centres = np.argwhere(plus_centres(img))
    if not len(centres):
      return
    r, c = centres[rng.integers(len(centres))]
    dr, dc = offsets[rng.integers(len(offsets))]
    img[r + dr, c + dc] = 0


def _ftp_draw(cfg, n: int, rng: np.random.Generator) -> Split:
  imgs = (rng.random((n, cfg.size, cfg.size)) < cfg.density).astype(np.int32)
  want = rng.random(n) < 0.5
  m = cfg.size - 2
  for i in range(n):
    if want[i]:
      r, c = rng.integers(m, size=2)
      imgs[i, r:r + 3, c:c + 3] |= PLUS
    else:
      _break_pluses(imgs[i], rng)
  label = plus_centres(imgs).any((-2, -1)).astype(np.int32)
  assert (label == want).all()
  patches = np.lib.stride_tricks.sliding_window_view(imgs, (3, 3), axis=(1, 2))
  windows = patches.reshape(n, m * m, 9).astype(np.float32)
  return Split(windows, windows, label, label.astype(bool))


def make(task: str, task_cfg, size: int, seed: int) -> Split:
  """A balanced split of `size` instances of `task` ('bec' | 'ftp') drawn with `seed`."""
  draw = {"bec": _bec_draw, "ftp": _ftp_draw}[task]
  return _balanced(lambda n, rng: draw(task_cfg, n, rng), size, np.random.default_rng(seed))


def num_windows(task: str, task_cfg) -> int:
  return task_cfg.n - task_cfg.run + 1 if task == "bec" else (task_cfg.size - 2) ** 2
