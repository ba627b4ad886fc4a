"""The synthetic grade-school-math world: generator, tokenizer, checker, flaw injector."""
