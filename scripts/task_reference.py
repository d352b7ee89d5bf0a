#!/usr/bin/env python3
"""Reference vectors of a task model (jina-embeddings-v3's layout) with Python onnxruntime,
tokenizers and numpy, independent of the addon: the task's instruction from config.json put
before each text, its index in `lora_adaptations` fed as `task_id`, token states mean-pooled
over the attention mask, cut to `dims` and L2-normalised.

stdin: {"model_dir", "onnx", "texts", "task", "max_length", "dims"?, "instruction"?}; stdout: vectors.
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

job = json.load(sys.stdin)
config = json.load(open(os.path.join(job["model_dir"], "config.json")))
instruction = job.get("instruction", config["task_instructions"][job["task"]])  # tests override it
task_id = np.array(config["lora_adaptations"].index(job["task"]), dtype=np.int64)

tokenizer = Tokenizer.from_file(os.path.join(job["model_dir"], "tokenizer.json"))
tokenizer.enable_truncation(job["max_length"])
session = ort.InferenceSession(os.path.join(job["model_dir"], "onnx", job["onnx"]), providers=["CPUExecutionProvider"])

vectors = []
for text in job["texts"]:  # one at a time: no padding in the reference
    ids = np.array([tokenizer.encode(instruction + text).ids], dtype=np.int64)
    mask = np.ones_like(ids)
    states = session.run(None, {"input_ids": ids, "attention_mask": mask, "task_id": task_id})[0]
    pooled = states.astype(np.float64)[0].mean(axis=0)[: job.get("dims") or None]
    vectors.append((pooled / np.linalg.norm(pooled)).tolist())
print(json.dumps(vectors))
