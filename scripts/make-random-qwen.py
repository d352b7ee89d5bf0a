"""Writes a Qwen2 snapshot laid out like Qodo/Qodo-Embed-1-1.5B (unprefixed keys in two shards
with an index, auto_map to the gte remote code, last-token pooling, no Normalize module) with
random fp32 weights (BF16 with --bf16, rounded to nearest even from the same values), for speed
and memory measurements only: no Qwen weights ship in any registry package. Tensors are generated
and written one at a time, so this needs little memory.
Usage: make-random-qwen.py OUT_DIR TOKENIZER_JSON [LAYERS] [--bf16]"""
import json
import os
import shutil
import struct
import sys

import numpy as np

HIDDEN, HEADS, KV_HEADS, INNER, VOCAB = 1536, 12, 2, 8960, 151646
HEAD_DIM = HIDDEN // HEADS


def shapes(layers):
    yield "embed_tokens.weight", (VOCAB, HIDDEN)
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    for i in range(layers):
        p = f"layers.{i}"
        yield f"{p}.input_layernorm.weight", (HIDDEN,)
        yield f"{p}.self_attn.q_proj.weight", (q, HIDDEN)
        yield f"{p}.self_attn.q_proj.bias", (q,)
        yield f"{p}.self_attn.k_proj.weight", (kv, HIDDEN)
        yield f"{p}.self_attn.k_proj.bias", (kv,)
        yield f"{p}.self_attn.v_proj.weight", (kv, HIDDEN)
        yield f"{p}.self_attn.v_proj.bias", (kv,)
        yield f"{p}.self_attn.o_proj.weight", (HIDDEN, q)
        yield f"{p}.post_attention_layernorm.weight", (HIDDEN,)
        yield f"{p}.mlp.gate_proj.weight", (INNER, HIDDEN)
        yield f"{p}.mlp.up_proj.weight", (INNER, HIDDEN)
        yield f"{p}.mlp.down_proj.weight", (HIDDEN, INNER)
    yield "norm.weight", (HIDDEN,)


def values(rng, name, shape):
    if name.endswith("norm.weight"):
        return np.ones(shape, np.float32)
    if name.endswith(".bias"):
        return (rng.standard_normal(shape, np.float32) * 0.02).astype(np.float32)
    if name == "embed_tokens.weight":
        return rng.standard_normal(shape, np.float32)
    scale = np.float32((3.0 / shape[1]) ** 0.5)
    return rng.uniform(-1, 1, shape).astype(np.float32) * scale


def to_bf16(a):
    bits = a.view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def write_shard(path, tensors, rng, bf16):
    header, offset = {}, 0
    width, dtype = (2, "BF16") if bf16 else (4, "F32")
    for name, shape in tensors:
        size = width * int(np.prod(shape))
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape in tensors:
            v = values(rng, name, shape)
            f.write((to_bf16(v) if bf16 else v).tobytes())


def main():
    bf16 = "--bf16" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--bf16"]
    out, tokenizer = args[0], args[1]
    layers = int(args[2]) if len(args) > 2 else 28
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    rng = np.random.default_rng(0)
    everything = list(shapes(layers))
    # Qodo's split: the first shard ends after about 80 % of the bytes
    total = sum((2 if bf16 else 4) * int(np.prod(s)) for _, s in everything)
    first, size = [], 0
    for name, shape in everything:
        if size > 0.8 * total:
            break
        first.append((name, shape))
        size += (2 if bf16 else 4) * int(np.prod(shape))
    second = everything[len(first):]
    files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map = {}
    for file, tensors in zip(files, (first, second)):
        write_shard(os.path.join(out, file), tensors, rng, bf16)
        weight_map.update({name: file for name, _ in tensors})
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)
    config = {
        "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": VOCAB, "hidden_size": HIDDEN,
        "intermediate_size": INNER, "num_hidden_layers": layers, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "max_position_embeddings": 131072, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0, "hidden_act": "silu", "eos_token_id": 151643, "torch_dtype": "bfloat16" if bf16 else "float32",
        "auto_map": {"AutoModel": "Alibaba-NLP/gte-Qwen2-1.5B-instruct--modeling_qwen.Qwen2Model"},
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f)
    shutil.copy(tokenizer, os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": HIDDEN, "pooling_mode_lasttoken": True}, f)
    with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 32768, "do_lower_case": False}, f)


if __name__ == "__main__":
    main()
