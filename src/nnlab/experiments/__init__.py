"""Recipes that reproduce the report (seed) and beat it (best); sweeps; the reproduce job."""
