"""Stand-in for transformers' `tests/generation/test_utils.py` (not shipped in the sdist): UMedPT does not generate."""


class GenerationTesterMixin:
    pass
