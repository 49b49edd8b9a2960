"""Perceptual hashing of images and videos (PDQ, vPDQ-style) and a known-content index to find re-uploads."""
