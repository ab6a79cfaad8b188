"""Models as data: the registry, the weight store, onnxruntime sessions, and tensors in and out."""
