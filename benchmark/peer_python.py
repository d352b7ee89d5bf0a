"""Python onnxruntime + tokenizers, batches of 32 in input order padded to the longest: the
bare-runtime reference. Reads a JSON job on stdin, prints one JSON line of measurements."""
import json
import resource
import sys
import time

import numpy as np
import onnxruntime
from tokenizers import Tokenizer


def main() -> None:
    job = json.load(sys.stdin)
    if job.get("mode") == "matmul":
        print(json.dumps({"gflops": matmul_ceiling()}))
        return
    tokenizer = Tokenizer.from_file(job["tokenizer"])
    tokenizer.enable_truncation(max_length=job["max_length"])
    if job.get("mode") == "tokens":
        tokenizer.no_padding()
        print(json.dumps({"lengths": [len(e.ids) for e in tokenizer.encode_batch(job["texts"])]}))
        return
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = job["threads"]
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(job["onnx"], options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}

    def embed(texts):
        out = []
        for start in range(0, len(texts), 32):
            enc = tokenizer.encode_batch(texts[start:start + 32])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(["last_hidden_state"], {k: v for k, v in feeds.items() if k in names})[0]
            w = mask[:, :, None].astype(np.float32)
            pooled = (hidden * w).sum(1) / np.clip(w.sum(1), 1e-9, None)
            out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return out

    embed(job["texts"][:32])  # warm-up
    started = time.perf_counter()
    embed(job["texts"])
    corpus_s = time.perf_counter() - started
    batch_ms = {}
    for n in (1, 8, 32):
        t = time.perf_counter()
        for _ in range(3):
            embed(job["fixed"][:n])
        batch_ms[str(n)] = (time.perf_counter() - t) / 3 / n * 1000
    query_ms = []
    for q in job["queries"]:
        t = time.perf_counter()
        embed([q])
        query_ms.append((time.perf_counter() - t) * 1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"corpus_s": corpus_s, "batch_ms": batch_ms, "query_ms": query_ms, "peak_rss_mb": peak}))


def matmul_ceiling() -> float:
    """GFLOP/s of one large fp32 matrix product (numpy's BLAS, threads from the environment)."""
    a = np.random.rand(2048, 2048).astype(np.float32)
    b = np.random.rand(2048, 2048).astype(np.float32)
    a @ b
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048 ** 3 / (time.perf_counter() - t) / 1e9)
    return best


if __name__ == "__main__":
    main()
