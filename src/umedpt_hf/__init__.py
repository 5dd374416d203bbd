"""umedpt_hf: UMedPT, a multi-task biomedical imaging foundation model, for the Hugging Face stack."""

__version__ = "0.1.0"
