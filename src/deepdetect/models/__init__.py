"""Detectors (timm backbone + head) and their checkpoints."""
