"""The `umedpt` command line."""
