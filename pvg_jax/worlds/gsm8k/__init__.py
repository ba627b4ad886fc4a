"""GSM8K, the paper's real data: the step checker on calculator annotations (`checker`),
the final-answer grader (`grading`) and flawed solutions for the sneaky role (`flaws`).
The default install and run never read GSM8K; it is the real-data path."""

from pvg_jax.worlds.gsm8k.checker import (  # noqa: F401 (the package's reading API)
    ANNOTATION,
    AnnotationCheck,
    DataError,
    Example,
    ExpressionError,
    annotation_counts,
    check_annotation,
    evaluate,
    parse_example,
    read_jsonl,
)
