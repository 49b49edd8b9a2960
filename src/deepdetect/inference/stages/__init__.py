"""Predict's stages, each one job on one file: decode, faces, score, record, known-content."""
