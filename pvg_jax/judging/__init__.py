"""Human judging: time-limited judging campaigns of a game's solutions (pvg-judge)."""
