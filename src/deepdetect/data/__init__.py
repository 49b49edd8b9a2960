"""Crop manifest schema, dataset layouts, splits, datasets and transforms."""
