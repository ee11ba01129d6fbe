"""Deployment: one size of a supernet as a standalone ESPnet model, as ONNX (fp32 or int8),
measured on this machine and chosen by a budget.

``compact`` cuts a size (or a depth pruned on demand) out of the supernet, ``onnx_export``
writes its encoder as ONNX, ``onnx_inference`` decodes with it using only numpy,
onnxruntime, soundfile and sentencepiece, ``measure`` times and sizes each form, and
``choose`` keeps the Pareto front and the most accurate model within a budget. Nothing
is imported here, so the ONNX inference module stays free of torch and ESPnet.
"""
