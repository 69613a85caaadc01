"""`nmt serve`'s PyTorch side: a trained model as an engine of the server in nmt_runtime.

The server itself (page, nmt's JSON API, LibreTranslate's, batching, limits, key) is
nmt_runtime.serve, which needs no PyTorch; `nmt-runtime serve` runs it for exported
directories. Here: `TorchEngine` (nmt.decode's Translator behind that server's `Engine`
interface) and `load_engine`, which picks it or the runtime's for a directory.
"""
