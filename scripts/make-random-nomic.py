"""Writes a NomicBert snapshot of CodeRankEmbed's real size with random weights (for speed
measurements only: no NomicBert weights ship in any registry package).
Usage: make-random-nomic.py OUT_DIR TOKENIZER_JSON"""
import json
import os
import shutil
import struct
import sys

import numpy as np

HIDDEN, HEADS, LAYERS, INNER, VOCAB = 768, 12, 12, 3072, 30528


def tensors(rng):
    yield "embeddings.word_embeddings.weight", rng.standard_normal((VOCAB, HIDDEN), np.float32)
    yield "embeddings.token_type_embeddings.weight", rng.standard_normal((2, HIDDEN), np.float32)
    yield "emb_ln.weight", np.ones(HIDDEN, np.float32)
    yield "emb_ln.bias", np.zeros(HIDDEN, np.float32)
    scale = lambda fan_in: np.float32((3.0 / fan_in) ** 0.5)
    for i in range(LAYERS):
        p = f"encoder.layers.{i}"
        yield f"{p}.attn.Wqkv.weight", rng.uniform(-1, 1, (3 * HIDDEN, HIDDEN)).astype(np.float32) * scale(HIDDEN)
        yield f"{p}.attn.out_proj.weight", rng.uniform(-1, 1, (HIDDEN, HIDDEN)).astype(np.float32) * scale(HIDDEN)
        for name in ("fc11", "fc12"):
            yield f"{p}.mlp.{name}.weight", rng.uniform(-1, 1, (INNER, HIDDEN)).astype(np.float32) * scale(HIDDEN)
        yield f"{p}.mlp.fc2.weight", rng.uniform(-1, 1, (HIDDEN, INNER)).astype(np.float32) * scale(INNER)
        for norm in ("norm1", "norm2"):
            yield f"{p}.{norm}.weight", np.ones(HIDDEN, np.float32)
            yield f"{p}.{norm}.bias", np.zeros(HIDDEN, np.float32)


def write_safetensors(path, named):
    header, offset = {}, 0
    for name, array in named:
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, array in named:
            f.write(array.tobytes())


def main():
    out, tokenizer = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    config = {"model_type": "nomic_bert", "vocab_size": VOCAB, "n_embd": HIDDEN, "n_head": HEADS, "n_layer": LAYERS,
              "n_inner": INNER, "n_positions": 8192, "max_trained_positions": 2048, "type_vocab_size": 2,
              "layer_norm_epsilon": 1e-12, "rotary_emb_fraction": 1.0, "rotary_emb_base": 1000,
              "rotary_emb_interleaved": False, "qkv_proj_bias": False, "mlp_fc1_bias": False, "mlp_fc2_bias": False,
              "activation_function": "swiglu", "prenorm": False}
    json.dump(config, open(os.path.join(out, "config.json"), "w"))
    json.dump({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False},
              open(os.path.join(out, "1_Pooling", "config.json"), "w"))
    shutil.copy(tokenizer, os.path.join(out, "tokenizer.json"))
    write_safetensors(os.path.join(out, "model.safetensors"), list(tensors(np.random.default_rng(0))))


if __name__ == "__main__":
    main()
