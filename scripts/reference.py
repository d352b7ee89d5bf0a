"""Independent reference embeddings: Python onnxruntime + Python tokenizers + numpy pooling.

Reads JSON from stdin: {"model_dir", "onnx", "texts", "max_length", "pooling": "mean"|"cls",
optionally "batch" (texts per run, default 16)} and writes {"vectors": [[...], ...]}
(L2-normalised) to stdout. Shares no code with the addon.
"""
import json
import sys

import numpy as np
import onnxruntime
from tokenizers import Tokenizer


def main() -> None:
    job = json.load(sys.stdin)
    tokenizer = Tokenizer.from_file(f"{job['model_dir']}/tokenizer.json")
    tokenizer.enable_truncation(max_length=job["max_length"])
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest of the batch
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(job["onnx"], options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    vectors = []
    batch = job.get("batch", 16)
    for start in range(0, len(job["texts"]), batch):
        encodings = tokenizer.encode_batch(job["texts"][start:start + batch])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(["last_hidden_state"], {k: v for k, v in feeds.items() if k in names})[0]
        if job["pooling"] == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        pooled = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors.extend(pooled.astype(np.float64).tolist())
    json.dump({"vectors": vectors}, sys.stdout)


if __name__ == "__main__":
    main()
