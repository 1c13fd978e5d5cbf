"""A generator as ONNX graphs (`graphs`: the condition encoder, one guided denoiser step, the decoder to the
TSDF, and their manifest; `wala export onnx`) and the onnxruntime runner that samples with them (`runner`).
onnx, onnxruntime and onnxscript (the `export` extra) are imported only when a graph is written or run."""

from wala.export.graphs import export_onnx, graph_parity
from wala.export.runner import OnnxPipeline

__all__ = ["export_onnx", "graph_parity", "OnnxPipeline"]
