"""What every console script shares: exit codes, one-line errors, flag parsing.

Exit codes (docs/operations.md):

  0   finished (or a finished workdir re-read)
  2   a user error: config key or value, flag, data file, workdir, disk full, permissions.
      One line on stderr naming the key / file:line / path and the fix; no traceback
      (PVG_DEBUG=1 shows it).
  3   the run failed: a loss or metric became non-finite, a checkpoint is damaged, or no
      intact game checkpoint is left.
  75  preempted (EX_TEMPFAIL): SIGTERM arrived, the state is checkpointed, and running the
      same command resumes. A scheduler should retry this code and not 0.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys

EXIT_USAGE, EXIT_FAILED, EXIT_PREEMPTED = 2, 3, 75


class UserError(Exception):
  """A problem the user fixes (bad input, occupied or damaged workdir); one-line message."""


class Preempted(Exception):  # noqa: N818 (a signal, not an error)
  """SIGTERM arrived and the run stopped at a checkpoint; the message says where."""


def debug() -> bool:
  return os.environ.get("PVG_DEBUG", "") not in ("", "0")


def _close_progress_bars() -> None:
  """Close the progress bars an exception left open, so the message starts its own line."""
  tqdm = sys.modules.get("tqdm")
  for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
    with contextlib.suppress(Exception):
      bar.close()


def _fail(prog: str, code: int, message: str) -> None:
  _close_progress_bars()
  print(f"{prog}: {message}", file=sys.stderr, flush=True)
  raise SystemExit(code)


def user_error_message(e: BaseException) -> str | None:
  """The one-line message of a user error, or None if `e` is a bug (keeps its traceback)."""
  if isinstance(e, UserError):
    return str(e)
  from pvg_jax import config as config_lib  # late: config imports the model stack
  if isinstance(e, config_lib.ConfigError):
    return str(e)
  if isinstance(e, json.JSONDecodeError):
    return f"unreadable JSON ({e.msg}, line {e.lineno})"
  if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or (
      "No space left on device" in str(e)):       # Orbax/TensorStore wrap the OSError
    where = getattr(e, "filename", None) or "the workdir"
    return (f"disk full writing {where}: free space and run the same command again (the "
            "last finished checkpoint is kept)")
  if isinstance(e, PermissionError):
    return f"permission denied: {e.filename} ({e.strerror})"
  if isinstance(e, FileNotFoundError):
    return str(e) if e.filename is None else f"no such file: {e.filename}"
  return None


@contextlib.contextmanager
def errors(prog: str):
  """Run a command's body: user errors -> one line + exit 2, preemption -> exit 75,
  non-finite training -> one line + exit 3. Anything else is a bug and keeps its traceback."""
  try:
    yield
    sys.stdout.flush()                    # a closed pipe shows here, not at exit
  except Preempted as e:
    _close_progress_bars()
    print(f"{prog}: {e}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_PREEMPTED) from None
  except BrokenPipeError:                 # e.g. `pvg-gsm8k-check file | head`
    with contextlib.suppress(OSError):
      sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (stdout is closed at exit)
    raise SystemExit(0) from None
  except Exception as e:  # noqa: BLE001 (classified below; bugs are re-raised)
    # a training failure can only come from modules already imported (importing them
    # here would import jax into every command's error path)
    failures = tuple(c for c in (getattr(sys.modules.get(m), n, None) for m, n in (
        ("pvg_jax.metrics", "NonFiniteError"), ("pvg_jax.checkpoint", "CheckpointError")))
        if c is not None)
    if failures and isinstance(e, failures):
      if debug():
        raise
      _fail(prog, EXIT_FAILED, f"error: {e}")
    message = user_error_message(e)
    if message is None or debug():
      raise
    _fail(prog, EXIT_USAGE, f"error: {message}")


def one_line(text: str, limit: int = 400) -> str:
  """A multi-line message (absl, ml_collections) as one line."""
  text = " ".join(line.strip() for line in str(text).splitlines() if line.strip())
  return text if len(text) <= limit else text[:limit - 3] + "..."


def unknown_override(argv: list[str]) -> str | None:
  """The first `--config.<key>=...` of argv whose key the config file does not have."""
  import importlib.util
  config_arg = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if config_arg is None and "--config" in argv[:-1]:
    config_arg = argv[argv.index("--config") + 1]
  if config_arg is None:
    return None
  path, _, option = config_arg.partition(":")
  try:
    spec = importlib.util.spec_from_file_location("_pvg_config_probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = module.get_config(option) if option else module.get_config()
  except Exception:  # noqa: BLE001 (the config itself is broken: reported elsewhere)
    return None
  for arg in argv:
    if arg.startswith("--config."):
      key = arg[len("--config."):].split("=", 1)[0]
      node = cfg
      for part in key.split("."):
        if not hasattr(node, "keys") or part not in node:
          return key
        node = node[part]
  return None


def parse_flags(prog: str):
  """An absl `flags_parser` whose errors (unknown flag or config key, bad --config
  override, a config file that raises) are one line and exit 2."""
  from absl import flags

  def parser(argv):
    try:
      return flags.FLAGS(argv)
    except Exception as e:  # noqa: BLE001 (flags.Error, or a config file's get_config)
      if debug():
        raise
      key = unknown_override(argv)
      if key is not None:
        _fail(prog, EXIT_USAGE, f"error: --config.{key}: the config has no key {key!r}")
      prefix = "" if isinstance(e, flags.Error) else f"{type(e).__name__}: "
      text = str(e)
      if "Traceback (most recent call last)" in text:   # a config file raised: its error
        head = text.split(": Error whilst", 1)[0] if text.startswith("flag ") else "config"
        text = f"{head}: {text.strip().splitlines()[-1].strip()}"
      _fail(prog, EXIT_USAGE, f"error: {prefix}{one_line(text) or type(e).__name__}")
  return parser


def run_app(prog: str, main) -> None:
  """absl's app.run(main) with this module's flag parsing and error handling."""
  from absl import app

  def guarded(argv):
    with errors(prog):
      return main(argv)
  app.run(guarded, flags_parser=parse_flags(prog))
