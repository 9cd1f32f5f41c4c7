"""Quantization below the exporters: how an int8 file is made (TFLite's converter set-up, ONNX
Runtime's ``quantize_static`` per layout), repaired within an accuracy budget (``--max-drop``) and
mixed for speed (``--quant mixed``). It imports no exporter: the exporters hand it the float model
(a SavedModel, a pre-processed ONNX graph) and the means to judge a candidate."""
