"""A loopback Hugging Face Hub for tests and offline demos (never imported by ``umedpt_hf``): see ``server.py``."""

from hub_server.server import LoopbackHub
from hub_server.store import LoopbackStore, git_blob_id, git_tree_id, lfs_pointer

__all__ = ["LoopbackHub", "LoopbackStore", "git_blob_id", "git_tree_id", "lfs_pointer"]
