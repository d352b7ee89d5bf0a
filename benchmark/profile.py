"""Where a graph's time goes: ONNX Runtime's own per-operator profile of the addon's exported
graphs on a corpus sample, in the addon's batches (sorted by token length, at most 1024 tokens
each). Reads a JSON job on stdin ({"tokenizer", "texts", "max_length", "threads", "graphs":
{name: onnx file}}), prints one JSON line: per graph, the wall seconds and seconds per op type."""
import collections
import json
import os
import sys
import time

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

BATCH_TOKENS = 1024


def batches(tokenizer: Tokenizer, texts: list[str]) -> list[dict]:
    encodings = tokenizer.encode_batch(texts)
    order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
    groups, current = [], []
    for i in order:
        if current and (len(current) + 1) * len(encodings[current[0]].ids) > BATCH_TOKENS:
            groups.append(current)
            current = []
        current.append(i)
    groups.append(current)
    feeds = []
    for group in groups:
        ids = np.zeros((len(group), len(encodings[group[0]].ids)), dtype=np.int64)
        for row, i in enumerate(group):
            ids[row, :len(encodings[i].ids)] = encodings[i].ids
        feeds.append({"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)})
    return feeds


def profile(onnx: str, feeds: list[dict], threads: int) -> dict:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    session = onnxruntime.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    session.run(["sentence_embedding"], feeds[0])
    started = time.perf_counter()
    for feed in feeds:
        session.run(["sentence_embedding"], feed)
    wall = time.perf_counter() - started
    trace = session.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    os.remove(trace)
    ops = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            ops[e["args"]["op_name"]] += e["dur"] / 1e6
    return {"wall_s": round(wall, 2), "ops_s": {op: round(s, 3) for op, s in ops.most_common()}}


def main() -> None:
    job = json.load(sys.stdin)
    tokenizer = Tokenizer.from_file(job["tokenizer"])
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=job["max_length"])
    feeds = batches(tokenizer, job["texts"])
    print(json.dumps({name: profile(onnx, feeds, job["threads"]) for name, onnx in job["graphs"].items()}))


if __name__ == "__main__":
    main()
