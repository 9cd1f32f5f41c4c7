"""Object detectors: boxes and labels (boxes.py), decoding and NMS as Keras layers carried into every
artifact (postprocess.py), training targets and loss (training.py), mAP and detection parity (metrics.py)."""
