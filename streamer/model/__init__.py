"""The stateful model contract: loading and validating ONNX files, exporting them from PyTorch, self-testing."""
