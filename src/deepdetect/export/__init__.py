"""ONNX export with its contract in the metadata, parity check against PyTorch, quantization."""
