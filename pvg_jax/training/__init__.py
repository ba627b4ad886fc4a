"""Train states, optimizers and the jitted supervised steps of both players."""
