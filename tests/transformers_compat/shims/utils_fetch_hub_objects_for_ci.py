"""Stand-in for transformers' `utils/fetch_hub_objects_for_ci.py` (not shipped in the sdist): no Hub URL is ever
resolved offline; a test that needs one of transformers' fixture images fails loudly instead of downloading."""


def url_to_local_path(url: str) -> str:
    raise RuntimeError(f"offline test run: refusing to fetch {url}")
