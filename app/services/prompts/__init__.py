"""Prompt configurations (seed 002's AI audit): append-only versions per model, restore,
export and import, and tests of a candidate configuration through the production path."""
