r"""Checkability training on GSM8K with pretrained players (the paper's setting).

    python -m pvg_jax.main --config configs/gsm8k.py \
        --config.prover.checkpoint=/ckpt/Qwen2.5-1.5B \
        --config.verifier.checkpoint=/ckpt/Qwen2.5-0.5B \
        --config.world.tokenizer=/ckpt/Qwen2.5-1.5B --config.world.family=qwen2 \
        --config.world.data_dir=/data/gsm8k --workdir runs/gsm8k

Both checkpoints are Hugging Face directories (config.json + safetensors; Llama, Qwen2 or
Gemma; pvg_jax.models.hf), loaded straight into the mesh; they must share the tokenizer
(`world.tokenizer`: a tokenizer.json or the directory holding it; `world.family` picks its
BOS/EOS/PAD, pvg_jax.models.hf_tokenizer). `world.data_dir` holds GSM8K's train.jsonl and
test.jsonl (github.com/openai/grade-school-math). The game is the arith config's (SRC
reward, rounds, PPO and verifier phases) with the GSM8K world: role instructions in the
prompt, the grader's final-answer correctness, and sneaky SFT on solutions with one
injected, carried-through arithmetic error (pvg_jax.worlds.gsm8k).

Memory per device, computed by pvg-compile (libtpu 0.0.52) at this config's shapes
(384 + 384 tokens; PPO 16 groups x 8), bf16 compute, FSDP over every chip, the
architectures in configs/hf_architectures (config.json only; the tiny tokenizer stands in):

    pvg-compile --config configs/gsm8k.py --config.compute_dtype=bfloat16 \
        --config.prover.checkpoint=configs/hf_architectures/qwen2.5-1.5b \
        --config.verifier.checkpoint=configs/hf_architectures/qwen2.5-0.5b \
        --config.world.tokenizer=configs/gsm8k_tiny/tokenizer.json \
        --config.world.data_dir=../shared/data/gsm8k "--config.mesh.shape=(1,8,1)" \
        --config.game.ppo.minibatches=4 --topology v5p:2x2x2

  prover + verifier      slice (HBM/chip)    batches                 SFT   PPO   verifier
  Qwen2.5-1.5B + 0.5B    v5e:4x4 (16 GiB)    defaults                58*   129*  48*
  Qwen2.5-1.5B + 0.5B    v5e:4x4 (16 GiB)    sft 16, ppo mb 8, ver 4 15.0  34*   6.6
  Qwen2.5-1.5B + 0.5B    v5p:2x2x2 (95 GiB)  ppo minibatches 4       85.5  81.9  73.6
  Llama-3.1-8B + 3.2-1B  v5p:2x2x4 (95 GiB)  sft 16, ppo mb 8, ver 4 44.8  90.0  11.7

GiB per chip; * does not fit (the temporaries alone need that much). The sampler and
scorer fit everywhere (<= 6.5 GiB). Activations dominate (no rematerialization
yet): fewer rows per chip (smaller batches, more minibatches, more chips) is the lever.
Shard with --config.mesh.shape=(data, fsdp, tensor).

Options:
    smoke   the same path end to end on the committed tiny random checkpoints
            (configs/gsm8k_tiny, `python -m pvg_jax.models.hf_tiny` rebuilds them) and
            ../shared/data/gsm8k, in a few minutes on a CPU
"""

import importlib.util
import pathlib

import ml_collections

HERE = pathlib.Path(__file__).resolve().parent
TINY = HERE / "gsm8k_tiny"


def _arith_config(arg: str) -> ml_collections.ConfigDict:
  spec = importlib.util.spec_from_file_location("pvg_arith_config", HERE / "arith.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  options = [a for a in arg.split(",") if a]
  if any(a != "smoke" for a in options):
    raise ValueError(f"configs/gsm8k.py:{arg}: the only option is 'smoke'")
  smoke = "smoke" in options
  c = _arith_config("smoke" if smoke else "")
  with c.unlocked():
    del c["evals"]                          # post-hoc evaluations: the arith world's
    c.world = w = ml_collections.ConfigDict()
    w.name = "gsm8k"
    w.data_dir = str(HERE.parent.parent / "shared" / "data" / "gsm8k") if smoke else ""
    w.tfds_dir = ""                         # set: read GSM8K through TFDS, prepared here
    w.tokenizer = str(TINY / "tokenizer.json") if smoke else ""
    w.family = "llama"                      # llama | qwen2 | gemma (special tokens)
    w.bos_token = w.eos_token = w.pad_token = ""   # "": the family's; bos "none": no BOS
    w.prompt_len = 128 if smoke else 384    # problems that do not fit are left out
    w.solution_len = 128 if smoke else 384  # (world.split_sizes counts the rest)
    c.prover.checkpoint = str(TINY / "prover") if smoke else ""
    c.verifier.checkpoint = str(TINY / "verifier") if smoke else ""
    c.prover.size = c.verifier.size = ""    # the checkpoints set the architecture
    if smoke:
      c.sft.steps, c.sft.batch_size, c.sft.num_problems = 20, 8, 64
      c.verifier_pretrain.steps, c.verifier_pretrain.batch_size = 10, 4
      c.verifier_pretrain.num_problems = 64
      c.eval.num_problems, c.eval.batch_size = 8, 16
      g = c.game
      g.rounds = 1
      g.pool_problems, g.heldout_pool_problems, g.pool_samples_per_role = 16, 4, 1
      g.prover_problems, g.eval_problems, g.sample_batch = 32, 8, 16
      g.checkpoint_every = g.snapshot_every = 2
      g.verifier.steps, g.verifier.batch_size = 4, 4
      g.ppo.max_steps = g.ppo.steps = 4
      g.ppo.groups, g.ppo.group_size = 4, 2
      g.ppo.stop_window = 2
      g.ppo.min_parseable = 0.0             # a tiny random prover writes no `####` yet
      c.log_every = 5
  return c.lock()
