"""Stand-in for transformers' `tests/exporters/test_export.py` (not in the sdist): torch.export tests are not run."""


class ExportTesterMixin:
    pass
