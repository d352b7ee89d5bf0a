#!/usr/bin/env python3
"""A snapshot laid out like jinaai/jina-embeddings-v3, with random weights: config.json with
`lora_adaptations`, `task_instructions` and `matryoshka_dimensions`; `onnx/model.onnx` whose
weights live in `onnx/model.onnx_data`, taking `input_ids`, `attention_mask` and a scalar
`task_id` that selects a LoRA adapter (rank `lora_rank`) on every projection, and returning
token states `text_embeds` to be mean-pooled; a WordPiece tokenizer; `1_Pooling` (mean). The tiny one also
has `onnx/model_fp16.onnx`: the same weights in half precision and a float16 output.

  python3 scripts/make-task-model.py tiny OUT   # the test fixture (tests/fixtures/task-tiny)
  python3 scripts/make-task-model.py jina OUT   # Jina v3's sizes (24 x 1024, ~2.3 GB), for the bench

Needs numpy, onnx and tokenizers. Deterministic: the same sizes give the same files.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TASKS = ["retrieval.query", "retrieval.passage", "separation", "classification", "text-matching"]
INSTRUCTIONS = {
    "retrieval.query": "Represent the query for retrieving evidence documents: ",
    "retrieval.passage": "Represent the document for retrieval: ",
    "separation": "",
    "classification": "",
    "text-matching": "",
}
SHAPES = {
    # hidden, layers, heads, ffn, vocab, positions, lora rank, matryoshka dimensions
    "tiny": dict(hidden=32, layers=2, heads=4, ffn=64, vocab=None, positions=128, rank=4, dims=[8, 16, 32]),
    "jina": dict(hidden=1024, layers=24, heads=16, ffn=4096, vocab=250002, positions=8194, rank=4,
                 dims=[32, 64, 128, 256, 512, 768, 1024]),
}
WORDS = ("the a an of to in is for and or not with by on at from as be this that it return "
         "function class def let const var if else while loop value list map key sort split text "
         "batch token vector model embed query document search code file read write error").split()


def tokenizer_json():
    """A lower-casing WordPiece tokenizer over a small vocabulary; [CLS] text [SEP]."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + WORDS + chars + ["##" + c for c in chars]
    vocab += list(".,:;!?()[]{}<>=+-*/_'\"#@$%&|\\^~`")
    ids = {t: i for i, t in enumerate(dict.fromkeys(vocab))}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])]
    )
    return tok, len(ids)


class Graph:
    def __init__(self, rng, half):
        self.rng, self.half = rng, half
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, stem):
        self.count += 1
        return f"{stem}_{self.count}"

    def op(self, kind, inputs, **attrs):
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def const(self, array, stem):
        """An initializer; in the fp16 file stored as float16 and cast back to float32."""
        name = self.name(stem)
        if array.dtype == np.float32 and self.half:
            self.inits.append(numpy_helper.from_array(array.astype(np.float16), name))
            return self.op("Cast", [name], to=TensorProto.FLOAT)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, *shape, scale=None):
        scale = scale if scale is not None else 1.0 / np.sqrt(shape[0])
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32), "w")

    def linear(self, x, n_in, n_out, task, rank):
        """x @ W + b + (x @ A[task]) @ B[task]: the LoRA adapter the task selects."""
        y = self.op("Add", [self.op("MatMul", [x, self.weight(n_in, n_out)]), self.weight(n_out, scale=0.02)])
        a = self.op("Gather", [self.weight(len(TASKS), n_in, rank, scale=1.0 / np.sqrt(n_in)), task], axis=0)
        b = self.op("Gather", [self.weight(len(TASKS), rank, n_out, scale=0.5 / np.sqrt(rank)), task], axis=0)
        return self.op("Add", [y, self.op("MatMul", [self.op("MatMul", [x, a]), b])])

    def layer_norm(self, x, n):
        ones = self.const(np.ones(n, np.float32), "ln_w")
        zeros = self.const(np.zeros(n, np.float32), "ln_b")
        return self.op("LayerNormalization", [x, ones, zeros], axis=-1, epsilon=1e-5)


def build(shape, half, rng):
    d, heads, rank = shape["hidden"], shape["heads"], shape["rank"]
    g = Graph(rng, half)
    i64 = lambda values, stem: g.const(np.array(values, np.int64), stem)
    ids, mask, task = "input_ids", "attention_mask", "task_id"
    x = g.op("Gather", [g.weight(shape["vocab"], d, scale=1.0), ids], axis=0)
    seq = g.op("Gather", [g.op("Shape", [ids]), i64(1, "axis")], axis=0)
    positions = g.op("Range", [i64(0, "zero"), seq, i64(1, "one")])
    x = g.layer_norm(g.op("Add", [x, g.op("Gather", [g.weight(shape["positions"], d, scale=1.0), positions], axis=0)]), d)
    # padding gets -1e4 added to its scores: [batch, 1, 1, seq]
    keep = g.op("Cast", [g.op("Unsqueeze", [mask, i64([1, 2], "axes")])], to=TensorProto.FLOAT)
    bias = g.op("Mul", [g.op("Sub", [keep, g.const(np.array(1, np.float32), "one_f")]), g.const(np.array(1e4, np.float32), "big")])
    split = i64([0, 0, heads, d // heads], "heads_shape")
    merge = i64([0, 0, d], "merge_shape")
    for _ in range(shape["layers"]):
        q, k, v = (g.op("Transpose", [g.op("Reshape", [g.linear(x, d, d, task, rank), split])], perm=[0, 2, 1, 3]) for _ in range(3))
        scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])
        scores = g.op("Add", [g.op("Mul", [scores, g.const(np.array(1 / np.sqrt(d // heads), np.float32), "scale")]), bias])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        x = g.layer_norm(g.op("Add", [x, g.linear(ctx, d, d, task, rank)]), d)
        up = g.op("Tanh", [g.linear(x, d, shape["ffn"], task, rank)])
        x = g.layer_norm(g.op("Add", [x, g.linear(up, shape["ffn"], d, task, rank)]), d)
    out_type = TensorProto.FLOAT16 if half else TensorProto.FLOAT
    g.nodes.append(helper.make_node("Cast", [x], ["text_embeds"], to=out_type))
    graph = helper.make_graph(
        g.nodes,
        "task_model",
        [
            helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(task, TensorProto.INT64, []),
        ],
        [helper.make_tensor_value_info("text_embeds", out_type, ["batch", "sequence", d])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def main():
    kind, out = sys.argv[1], sys.argv[2]
    shape = dict(SHAPES[kind])
    tok, vocab = tokenizer_json()
    shape["vocab"] = shape["vocab"] or vocab
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    config = {
        "model_type": "xlm-roberta",
        "architectures": ["XLMRobertaLoRA"],
        "hidden_size": shape["hidden"],
        "num_hidden_layers": shape["layers"],
        "num_attention_heads": shape["heads"],
        "intermediate_size": shape["ffn"],
        "vocab_size": shape["vocab"],
        "max_position_embeddings": shape["positions"],
        # as jina-embeddings-v3's own config: its positions are not XLM-R's absolute ones
        "position_embedding_type": "rotary",
        "lora_adaptations": TASKS,
        "lora_rank": shape["rank"],
        "task_instructions": INSTRUCTIONS,
        "matryoshka_dimensions": shape["dims"],
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": shape["hidden"], "pooling_mode_mean_tokens": True}, f, indent=2)
    with open(os.path.join(out, "modules.json"), "w") as f:
        json.dump([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ], f, indent=2)
    variants = [(False, "model.onnx")] + ([(True, "model_fp16.onnx")] if kind == "tiny" else [])
    for half, name in variants:
        model = build(shape, half, np.random.default_rng(17))
        path = os.path.join(out, "onnx", name)
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=name + "_data", size_threshold=1024)
        onnx.checker.check_model(path)
    print(f"wrote {out}: {kind} ({shape['layers']} x {shape['hidden']}, vocab {shape['vocab']})")


if __name__ == "__main__":
    main()
