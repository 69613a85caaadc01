"""Export: a trained model as ONNX graphs that nmt_runtime translates with, without PyTorch.

graphs.py names the tensors and wraps the model's encoder and decoder step as graphs;
onnx_files.py traces, checks, compares and quantizes them; write.py builds the exported
directory (`nmt export`); loaded.py lets nmt's own commands translate with one.
"""
