"""Example pipelines for flow; `top_artists` is the one the root Flowfile runs."""
