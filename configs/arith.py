r"""Checkability training (Kirchner et al. 2024) on the synthetic arith world: the main job.

Run (at most ~15 minutes on a 2-core CPU from an empty workdir, compiles included):

    python -m pvg_jax.main --config configs/arith.py --workdir runs/arith

It trains the initial players (cached in <workdir>/init_players/, reused by later runs):
the role-conditioned prover by SFT (helpful -> canonical solutions, sneaky -> flaw-injected
ones) and the verifier on generator pairs; then plays `game.rounds` rounds of verifier
phase -> PPO prover phase (SRC reward) -> held-out evaluation, and prints one row per round:

    round  helpful  sneaky  V pair   V(h+)   V(s-)  steps stop                      sec
     init    0.5xx   0.1xx   0.6xx ...

Options (comma-separated after the file name):
    smoke        the same path in ~30 s (tiny world, models and budgets)
    learn        the smoke world and budgets with a prover that has learned the task (~0.4
                 helpful accuracy after ~1 min of SFT): what the learning tests and probes
                 at CI size start from (tests/test_learning.py)
    styles       solutions in three styles (full | terse | merged, worlds/arith/styles.py)
                 that cost the budgeted checker different work, and a checker budget that
                 a quarter of the world's helpful solutions exceed (variant 1 of
                 docs/reproduction_plan.md)
    terse        full and result-only (terse) solutions, 1 : 1, a longer SFT and a
                 checker budget between the 3-step full and 3-step terse costs: the world
                 where correctness-only RL drifts to the less legible style (variant 5)
    cgc          correctness-gated convincingness reward
    goodhart     iterative goodharting (reward V, no roles)
    correctness  the correctness-only baseline: one long PPO run (2x a round's step
                 budget, same beta), snapshots along the way for the legibility-tax curve
e.g.  python -m pvg_jax.main --config configs/arith.py:smoke,cgc --workdir /tmp/cgc

Override any key on the command line, e.g. --config.game.ppo.beta=0.1.
"""

import ml_collections

from pvg_jax import config

REWARDS = ("src", "cgc", "goodhart", "correctness")
WORLDS = ("styles", "terse")      # styled worlds (docs/reproduction_plan.md)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg: comma-separated options: "smoke" and/or a reward (default src), e.g. "smoke,cgc"."""
  options = [a for a in arg.split(",") if a]
  unknown = [a for a in options if a not in ("smoke", "learn", *WORLDS, *REWARDS)]
  if (unknown or sum(a in REWARDS for a in options) > 1
      or sum(a in WORLDS for a in options) > 1):
    raise ValueError(f"configs/arith.py:{arg}: options are 'smoke', 'learn', one of "
                     f"{WORLDS} and one of {REWARDS}")
  learn = "learn" in options
  smoke = "smoke" in options or learn
  reward = next((a for a in options if a in REWARDS), "src")
  c = ml_collections.ConfigDict()
  c.seed = 0                                # root of every random draw (problems, init, data)
  c.init_players_dir = ""                   # cache of initial players and judges; "" means
                                            # <workdir>/init_players (share it across runs)
  c.init_checkpoint_every = 25 if smoke else 200   # SFT / verifier-pretraining steps
                                            # between their checkpoints (and on SIGTERM)

  c.world = w = ml_collections.ConfigDict()
  w.min_start = 1                           # people with a given count
  w.max_start = 2
  w.min_steps = 1                           # derived facts ("k times as many", ...)
  w.max_steps = 2 if smoke else 4
  w.start_range = (1, 12)                   # given counts
  w.times_range = (2, 3)                    # k of "k times as many"
  w.add_range = (1, 9)                      # k of "k more" / "k fewer"
  w.max_value = 30                          # every true count lies in [0, max_value]
  w.operations = ("times", "more", "fewer")
  w.p_ref_previous = 0.6                    # a derived fact refers to the previous person
  w.max_distractors = 1                     # facts about another item, never needed
  w.p_distractor = 0.5
  w.max_number = 99                         # largest number token (flawed values fit)
  w.digits = False                          # True: one token per digit
  w.solution_slack = 8                      # extra solution columns beyond canonical length
  w.p_arith_flaw = 0.5                      # injected flaw: arith vs misread
  w.max_flaw_delta = 3                      # |error| of an injected arith flaw
  styled, terse = "styles" in options, "terse" in options
  w.styles = (("full", "terse", "merged") if styled else ("full", "terse") if terse
              else ("full",))               # how generator-written solutions are written
                                            # (styles.py), one style drawn per solution,
                                            # the same mixture for both roles; ("full",):
                                            # the single-style world
  w.style_weights = (1.0,) * len(w.styles)  # their mixture weights

  c.prover = ml_collections.ConfigDict()
  c.prover.size = "v30k" if learn else "v16k" if smoke else "p120k"   # models/sizes.py
  c.verifier = ml_collections.ConfigDict()
  c.verifier.size = "v16k" if smoke else "v30k"
  c.allow_larger_verifier = False           # the verifier must not outsize the prover
  c.compute_dtype = "float32"               # "bfloat16": bf16 matmuls, f32 master weights

  c.mesh = ml_collections.ConfigDict()
  c.mesh.shape = (-1, 1, 1)                 # ('data', 'fsdp', 'tensor'); -1: all devices

  c.sft = s = ml_collections.ConfigDict()   # prover SFT (round -1)
  s.steps = 2500 if learn else 300 if smoke else 4000 if terse else 1800   # terse: two
                                            # styles share the data (variant 5)
  s.batch_size = 32 if smoke else 64        # sequences per step, half helpful half sneaky
  s.num_problems = 4096 if learn else 512 if smoke else 16384   # prover-split problems
                                            # SFT draws from
  s.lr = 3e-3 if smoke else 2e-3
  s.warmup_steps = 5 if smoke else 100
  s.weight_decay = 0.01
  s.grad_clip = 1.0

  c.verifier_pretrain = v = ml_collections.ConfigDict()   # generator pairs (round -1)
  v.steps = 100 if smoke else 1500
  v.batch_size = 32 if smoke else 64        # problems per step, each a (correct, flawed) pair
  v.num_problems = 512 if smoke else 16384  # generated verifier-split problems
  v.lr = 3e-3 if smoke else 2e-3
  v.warmup_steps = 5 if smoke else 100
  v.weight_decay = 0.01
  v.grad_clip = 1.0
  v.loss = "bradley_terry"                  # or "cross_entropy" (METHOD 1.1)
  v.lam = 3e-3                              # weight of E V^2 (undisclosed in K; our choice)

  c.eval = e = ml_collections.ConfigDict()  # held-out evaluation of the players
  e.num_problems = 32 if smoke else 512     # test-split problems
  e.samples_per_role = 2 if smoke else 4    # prover samples per problem and role
  e.batch_size = 64 if smoke else 256       # sampler batch
  e.temperature = 1.0

  c.game = g = ml_collections.ConfigDict()  # checkability training (METHOD 1)
  g.rounds = 2 if smoke else 3
  g.reward = reward                         # src | cgc | goodhart | correctness
                                            # (| oracle_src | zero: probes and controls)
  g.roles = "both"                          # roles PPO samples: both (uniform) | helpful |
                                            # sneaky (probes and controls)
  g.format_penalty = False                  # unparseable -> lowest reward (off: paper-faithful)
  g.warm_start_prover = False               # K restarts both players every round
  g.warm_start_verifier = False
  g.pool_problems = 512 if learn else 64 if smoke else 1024   # verifier-split problems
                                            # the pool samples
  g.pool_samples_per_role = 2 if smoke else 4   # samples per pool problem, role and source
  g.heldout_pool_problems = 128 if learn else 16 if smoke else 128   # of those, never
                                            # trained on (eval)
  g.mixture = "equal"                       # equal | exp2 | weights per round, e.g. "1,1,2"
  g.prover_problems = 256 if smoke else 8192    # size of D_pi (prover-split prompts)
  g.eval_problems = 32 if smoke else 256    # held-out test problems per round
  g.eval_samples_per_role = 2
  g.sample_batch = 64 if smoke else 256     # sampler batch for pool and eval sampling
  g.checkpoint_every = 3 if smoke else 25   # PPO steps between checkpoints
  g.snapshot_every = 3 if smoke else 25     # PPO steps between kept prover snapshots

  g.verifier = vg = ml_collections.ConfigDict()   # verifier phase of every round
  vg.steps = 100 if learn else 10 if smoke else 200   # the same number every round (0: never
                                            # trained, V_i = V_init: the frozen control)
  vg.batch_size = 8 if smoke else 32        # problems per step
  vg.k = 4                                  # balanced solutions per problem (even)
  vg.generator_share = 0.5                  # share of each step's problems that are
                                            # generator pairs (pretraining data, replayed).
                                            # Round 0, paired gain of V_0 over V_init on
                                            # held-out pairs: -0.016 +- 0.010 without,
                                            # -0.005 +- 0.010 with 0.5 (AUC 0.675 -> 0.699)
  vg.lr = 1e-4                              # measured on the default pool (round 0, held-out
                                            # pairs): 1e-3 left V_0 at 0.638 vs V_init 0.697,
                                            # 3e-4 at 0.662, 1e-4 at 0.691
  vg.warmup_steps = 2 if smoke else 20
  vg.weight_decay = 0.01
  vg.grad_clip = 1.0
  vg.loss = "bradley_terry"                 # or "cross_entropy"
  vg.lam = 3e-3                             # weight of E V^2

  g.ppo = pg = ml_collections.ConfigDict()  # prover phase of every round
  pg.max_steps = 6 if smoke else 100        # step budget per round
  pg.groups = 8 if smoke and not learn else 16   # (problem, role) groups per step
  pg.group_size = 4 if smoke and not learn else 8   # b: samples per group (SRC: b >= 2)
  pg.lr = 6e-4 if learn else 2e-4          # learn: the small prover takes a larger rate
  pg.warmup_steps = 2 if smoke else 10
  pg.weight_decay = 0.0
  pg.grad_clip = 1.0
  pg.steps = pg.get_ref("max_steps")        # schedule length in PPO steps (warmup, then
                                            # cosine to 10% of lr), whatever epochs and
                                            # minibatches are
  pg.beta = 0.05                            # KL(pi || pi_init) weight, same for every reward
  pg.adaptive_kl = False
  pg.kl_target = 2.0                        # nats per solution, with adaptive_kl
  pg.kl_horizon = 100.0
  pg.gamma = 1.0
  pg.gae_lambda = 0.95
  pg.clip_eps = 0.2
  pg.value_clip = 0.2
  pg.vf_coef = 0.5
  pg.epochs = 2
  pg.minibatches = 2
  pg.advantages = "rloo"                    # rloo (group baseline, no critic) | gae
                                            # (separate critic fitted before each round).
                                            # rloo: measured in tests/test_learning.py and
                                            # the probes, a constant-reward group gets zero
                                            # advantage and no critic noise reaches the policy
  pg.whiten = "batch"                       # scale advantages by their std: none | batch |
                                            # role (per role); the mean is never subtracted.
                                            # The probes could not tell them apart
                                            # (docs/learning_fixes.md); batch keeps the step
                                            # size independent of the reward's scale
  pg.whiten_floor = 0.1                     # std floor of that scaling
  pg.role_anchor = 1.0                      # weight of the other role's log-prob anchor
                                            # (rl/prover_step.py); 0: off. Without it,
                                            # sneaky-only PPO moved the helpful role as
                                            # much as the sneaky one (probes, docs/results.md)
  pg.role_anchor_share = 0.25               # share of each minibatch's rows it is estimated
                                            # on. Sneaky-only probe, 60 steps: helpful
                                            # 0.473 -> 0.479 (1.0: -> 0.463; no anchor:
                                            # -> 0.148); probe wall time 64 s vs 78 s at 1.0
  pg.critic_warmup_steps = 4 if smoke else 20   # gae: critic-only steps on the initial
                                            # policy before each round
  pg.temperature = 1.0
  pg.stop_window = 2 if smoke else 10       # steps averaged by the stopping rules
  pg.max_kl = 25.0                          # divergence guard: KL(pi || pi_init) per
                                            # solution above this ends the round as
                                            # diverged (healthy rounds stay below ~1; the
                                            # collapsed prover of lr 3e-3 reached 51)
  pg.min_parseable = 0.05                   # ... and so does a parseable share below this

  c.evals = ev = ml_collections.ConfigDict()   # post-hoc evaluations (pvg-eval, METHOD 1.3)
  ev.test_problems = 64 if smoke else 256   # test problems for legibility and best-of-n
  ev.samples_per_problem = 4 if smoke else 8    # helpful samples per problem (K: 128)
  ev.all_snapshots = False                  # legibility of every prover snapshot, not only
                                            # each round's final one (one-round runs: always)
  ev.checker_budget = ((21 if smoke else 30) if terse else 0)   # tokens (and effort) the
                                            # checker may spend; 0: see checker_budget_share.
                                            # terse: between the longest full (2-step 19,
                                            # 3-step 27) and terse (23, 33) solutions
  ev.checker_fallback = "coin"              # out of budget: coin | accept | reject
  ev.checker_budget_share = 0.25 if styled else 0.0   # with checker_budget 0: the budget
                                            # that this share of the world's helpful
                                            # solutions exceed (0: the longest canonical)
  ev.checker_effort_terse = 6               # extra cost of a clause without its operation
                                            # (find the fact, compute it; our choice)
  ev.checker_effort_merged = 8              # ... of a clause hiding an intermediate result
  ev.judges = ("v16k:0", "v16k:1", "v30k:2")    # model judge panel, "<size>:<seed>"
  ev.judge_problems = 128 if smoke else 2048    # initial-prover samples they learn from
  ev.judge_samples_per_role = 2 if smoke else 4
  ev.judge_steps = 40 if smoke else 1000
  ev.judge_batch = 16 if smoke else 64      # same-problem (correct, incorrect) pairs per step
  ev.judge_lr = 2e-3
  ev.best_of_n = (2,) if smoke else (2, 4, 8)
  ev.bon_samples = 4 if smoke else 16       # initial-prover samples per test problem
  ev.bon_draws = 8 if smoke else 32         # balanced draws per problem and n
  ev.attack_rewards = ("src",) if terse else ("src", "cgc", "goodhart")
  ev.attack_steps = 4 if smoke else 150 if terse else 50   # PPO budget of an attack.
                                            # terse: twice the steps the attacks on seed 0's
                                            # V_init took (SRC 70, CGC 71, goodharting 78
                                            # of 300), so V_init falls within half of it
  ev.attack_groups = 4 if smoke else 8
  ev.attack_group_size = 4 if smoke else 8
  ev.attack_window = 2 if smoke else 5      # steps the success rule averages over
  ev.separability_size = "v16k"
  ev.separability_steps = 20 if smoke else 200
  ev.separability_batch = 16 if smoke else 32   # same-problem (helpful, sneaky) pairs

  c.log_every = 10 if smoke else 50         # steps between metric fetches
  c.profile_steps = 0                       # >0: jax.profiler trace of PPO steps 1..N of
                                            # round 0 into <workdir>/profile
  if reward == "correctness":               # one continuous run instead of restarts
    config.as_baseline(c)
  return c.lock()
