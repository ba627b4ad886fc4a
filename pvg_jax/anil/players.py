"""The players of the toy games: small Flax networks, kept as plain dicts of arrays.

The prover sees the whole instance and emits one logit per window (an MLP on the flat input
for `bec`, a fully convolutional net for `ftp`, whose 3x3 valid convolution lines its
output up with the plus centres, run on the image's 3x3 patches). Its message is a pointer
over the windows, continuous (a softmax) or discrete (one-hot, straight-through gradients):
`message`. The verifier reads only the window the message points to,
glimpse = sum_p m_p * window_p, and maps it to the logit of "accept" with an MLP. It sees
nothing else, so all it can learn about the instance comes through the prover's message.

As in pvg_jax.models.functional, the modules are definitions only: `init` returns a pure
dict and `apply` merges it back inside jit.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from flax import nnx

MESSAGES = ("continuous", "discrete")


@dataclasses.dataclass(frozen=True)
class Spec:
  kind: str                  # "mlp_prover" | "patch_prover" | "verifier"
  in_shape: tuple[int, ...]  # one instance's input (prover input or one window)
  out: int                   # logits out (windows for provers, 1 for the verifier)
  hidden: int


class MLP(nnx.Module):
  def __init__(self, spec: Spec, rngs: nnx.Rngs):
    d = 1
    for s in spec.in_shape:
      d *= s
    self.l1 = nnx.Linear(d, spec.hidden, rngs=rngs)
    self.l2 = nnx.Linear(spec.hidden, spec.hidden, rngs=rngs)
    self.l3 = nnx.Linear(spec.hidden, spec.out, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    return self.l3(jax.nn.relu(self.l2(jax.nn.relu(self.l1(x)))))


class PatchProver(nnx.Module):
  """A 3x3 valid convolution then two 1x1 ones, [B, P, 9 * C] patches -> [B, P] logits.

  The input is the image already cut into its P 3x3 patches (im2col, done once by the
  task), so the convolution is a matmul: what XLA:CPU runs fastest, and what stays a plain
  matmul when the players are vmapped over seeds."""

  def __init__(self, spec: Spec, rngs: nnx.Rngs):
    self.c1 = nnx.Linear(spec.in_shape[-1], spec.hidden, rngs=rngs)
    self.c2 = nnx.Linear(spec.hidden, spec.hidden, rngs=rngs)
    self.c3 = nnx.Linear(spec.hidden, 1, rngs=rngs)

  def __call__(self, patches: jax.Array) -> jax.Array:
    return self.c3(jax.nn.relu(self.c2(jax.nn.relu(self.c1(patches)))))[..., 0]


def _module(spec: Spec, rngs: nnx.Rngs) -> nnx.Module:
  return PatchProver(spec, rngs) if spec.kind == "patch_prover" else MLP(spec, rngs)


@functools.cache
def _graphdef(spec: Spec):
  return nnx.split(nnx.eval_shape(lambda: _module(spec, nnx.Rngs(0))))[0]


def init(spec: Spec, key: jax.Array) -> dict:
  """Fresh parameters (a pure dict); traceable, so it vmaps over keys."""
  return nnx.to_pure_dict(nnx.state(_module(spec, nnx.Rngs(params=key))))


def apply(spec: Spec, params: dict, x: jax.Array) -> jax.Array:
  out = nnx.merge(_graphdef(spec), params)(x)
  return out[..., 0] if spec.kind == "verifier" else out


def message(logits: jax.Array, kind: str, temperature: float, key: jax.Array | None,
            ) -> jax.Array:
  """The prover's pointer over windows [B, P] from its logits.

  continuous: softmax(logits / T). discrete: one_hot(argmax(logits + g)) with the
  straight-through gradient of the softmax (Bengio et al. 2013), where g is Gumbel noise
  when `key` is given (training: the prover explores its pointers) and 0 otherwise (eval).
  """
  soft = jax.nn.softmax(logits / temperature, axis=-1)
  if kind == "continuous":
    return soft
  if key is not None:
    logits = logits + jax.random.gumbel(key, logits.shape)
  hard = jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1], dtype=soft.dtype)
  return hard + soft - jax.lax.stop_gradient(soft)


def glimpse(msg: jax.Array, windows: jax.Array) -> jax.Array:
  """What the verifier reads: sum_p m_p * window_p, [B, F]."""
  return jnp.einsum("bp,bpf->bf", msg, windows)
