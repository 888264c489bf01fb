"""What commands write: output files made safely (output.py), the .npz of arrays (npz.py), a
runnable ONNX model (onnx_model.py)."""
