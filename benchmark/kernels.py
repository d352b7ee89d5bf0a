"""ONNX Runtime's own matrix-product ceilings on this CPU, for MiniLM's projection shapes: fp32
MatMul against DynamicQuantizeMatMul with uint8 weights (what dtype 'int8' uses) and with int8
weights. The most that int8 can gain here is read off these, whatever the graph around them.
Reads a JSON job on stdin ({"threads", "rows"}), prints one JSON line."""
import json
import sys
import time

import numpy as np
import onnxruntime
from onnx import TensorProto, helper, numpy_helper


def session(kind: str, k: int, n: int, threads: int) -> onnxruntime.InferenceSession:
    w = np.random.default_rng(0).standard_normal((k, n)).astype(np.float32) * 0.05
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])
    if kind == "fp32":
        nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
        weights = [numpy_helper.from_array(w, "w")]
    else:
        scale = np.abs(w).max(0) / 127
        zero = 128 if kind == "uint8" else 0
        dtype = np.uint8 if kind == "uint8" else np.int8
        weights = [
            numpy_helper.from_array((np.round(w / scale) + zero).astype(dtype), "wq"),
            numpy_helper.from_array(scale.astype(np.float32), "scale"),
            numpy_helper.from_array(np.full(n, zero, dtype), "zero"),
        ]
        nodes = [helper.make_node("DynamicQuantizeMatMul", ["x", "wq", "scale", "zero"], ["y"], domain="com.microsoft")]
    graph = helper.make_graph(nodes, "gemm", [x], [y], weights)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=9)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def gflops(kind: str, m: int, k: int, n: int, threads: int) -> float:
    s = session(kind, k, n, threads)
    x = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
    for _ in range(3):
        s.run(None, {"x": x})
    best = float("inf")
    for _ in range(20):
        t = time.perf_counter()
        s.run(None, {"x": x})
        best = min(best, time.perf_counter() - t)
    return 2 * m * k * n / best / 1e9


def main() -> None:
    job = json.load(sys.stdin)
    shapes = {}
    for k, n in ((384, 1536), (1536, 384)):
        shapes[f"{job['rows']}x{k}x{n}"] = {kind: round(gflops(kind, job["rows"], k, n, job["threads"]), 1) for kind in ("fp32", "uint8", "int8")}
    print(json.dumps(shapes))


if __name__ == "__main__":
    main()
