"""The offline pipeline: corpus readers, dataset build, harmonizer, synthetic data,
training, ONNX export and evaluation. It may import the live runtime in riffd.models;
the runtime never imports it."""
