"""One start of a search CLI with Python onnxruntime, in this fresh process: import onnxruntime
and tokenizers, load the ONNX file and the tokenizer, embed one query (mean pooling), print
the figures as one JSON line. argv[1]: a JSON job {onnx, tokenizer, threads}."""
import time

start = time.perf_counter()
import json
import resource
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

job = json.loads(sys.argv[1])


def rss_mb():
    with open("/proc/self/statm") as f:
        return round(int(f.read().split()[1]) * 4096 / 1e6)


options = ort.SessionOptions()
options.intra_op_num_threads = job["threads"]
options.inter_op_num_threads = 1
session = ort.InferenceSession(job["onnx"], options, providers=["CPUExecutionProvider"])
tokenizer = Tokenizer.from_file(job["tokenizer"])
loaded = {"rss_mb": rss_mb(), "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6)}
ids = np.array([tokenizer.encode("how are texts split into batches by a token budget").ids], dtype=np.int64)
feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
names = {i.name for i in session.get_inputs()}
if "token_type_ids" in names:
    feeds["token_type_ids"] = np.zeros_like(ids)
states = session.run(["last_hidden_state"], feeds)[0]
vector = states[0].mean(axis=0)
vector /= np.linalg.norm(vector)
print(json.dumps({**loaded, "first_vector_ms": (time.perf_counter() - start) * 1000}))
