"""Python onnxruntime + tokenizers, batches of 32 padded to the longest: the bare-runtime reference,
in input order as a user would call it, or (job "sorted") sorted by token length and reading the
graph's own pooled output, the fastest a bare session does with the addon's graph. Reads a JSON job
on stdin, prints one JSON line of measurements."""
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
    in_order = not job.get("sorted", False)
    # tokenizer.json may carry its own padding (MiniLM's pads every text to 128).
    if in_order:
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    else:
        tokenizer.no_padding()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = job["threads"]
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(job["onnx"], options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    run_ms = []

    def run(enc):
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feeds = {k: v for k, v in feeds.items() if k in names}
        t = time.perf_counter()
        if not in_order:
            vectors = session.run(["sentence_embedding"], feeds)[0]
        else:
            hidden = session.run(["last_hidden_state"], feeds)[0]
            w = mask[:, :, None].astype(np.float32)
            pooled = (hidden * w).sum(1) / np.clip(w.sum(1), 1e-9, None)
            vectors = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        run_ms.append((time.perf_counter() - t) * 1000)
        return vectors

    def embed(texts):
        if in_order:
            return [run(tokenizer.encode_batch(texts[s:s + 32])) for s in range(0, len(texts), 32)]
        enc = tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(enc[i].ids))
        out = []
        for s in range(0, len(order), 32):
            rows = [enc[i] for i in order[s:s + 32]]
            longest = len(rows[0].ids)
            for e in rows:
                e.pad(longest, pad_id=0, pad_token="[PAD]")
            out.append(run(rows))
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
    run_ms.clear()
    for q in job["queries"]:
        t = time.perf_counter()
        embed([q])
        query_ms.append((time.perf_counter() - t) * 1000)
    tokenize_s = time_tokenizer(tokenizer, job["texts"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"corpus_s": corpus_s, "batch_ms": batch_ms, "query_ms": query_ms, "query_run_ms": run_ms,
                      "tokenize_s": tokenize_s, "peak_rss_mb": peak}))


def time_tokenizer(tokenizer, texts) -> float:
    """Seconds to tokenise the corpus in one call, as the addon does before it sorts by length."""
    tokenizer.no_padding()
    started = time.perf_counter()
    tokenizer.encode_batch(texts)
    return time.perf_counter() - started


def matmul_ceiling() -> float:
    """GFLOP/s of one large fp32 matrix product (numpy's BLAS, threads from the environment)."""
    a = np.random.rand(2048, 2048).astype(np.float32)
    b = np.random.rand(2048, 2048).astype(np.float32)
    a @ b
    best = 0.0
    for _ in range(20):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048 ** 3 / (time.perf_counter() - t) / 1e9)
    return best


if __name__ == "__main__":
    main()
