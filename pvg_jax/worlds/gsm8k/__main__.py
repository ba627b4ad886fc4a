from pvg_jax.worlds.gsm8k.checker import main

main()
