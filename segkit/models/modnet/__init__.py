"""MODNet: the network rebuilt from its paper and reference code, and the checkpoint -> ONNX conversion."""
