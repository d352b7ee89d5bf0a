"""An independent Qwen2/Qwen3 embedder in numpy, for the tests: the snapshot's own tokenizer
(Hugging Face `tokenizers`), its config.json, and its safetensors shards read with numpy alone.
Each text runs alone (no padding), so batching cannot hide a masking error.

Reads a JSON job on stdin: {"model_dir", "texts", "max_length", "eos", "causal", "prefix"};
writes {"vectors": [...], "ids": [...]} (the last-token states, L2-normalised, and the token ids)."""
import json
import struct
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


def read_safetensors(path):
    raw = Path(path).read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info["dtype"]
        start, end = info["data_offsets"]
        data = np.frombuffer(raw[8 + size + start : 8 + size + end], dtype="<f4")
        out[name] = data.reshape(info["shape"]).astype(np.float64)
    return out


def weights(model_dir):
    d = Path(model_dir)
    index = d / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    tensors = {}
    for f in files:
        tensors.update(read_safetensors(d / f))
    return {k.removeprefix("model."): v for k, v in tensors.items()}


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope(x, theta):
    # x: [heads, seq, dim]; halves rotated
    dim = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, dim, 2) / dim)
    angles = np.arange(x.shape[1])[:, None] * inv[None, :]
    cos, sin = np.cos(np.concatenate([angles, angles], -1)), np.sin(np.concatenate([angles, angles], -1))
    half = dim // 2
    turned = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos + turned * sin


def embed(ids, w, c, causal):
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    d = c.get("head_dim") or c["hidden_size"] // heads
    eps, theta = c.get("rms_norm_eps", 1e-6), c.get("rope_theta", 10000.0)
    x = w["embed_tokens.weight"][ids]
    n = len(ids)
    for layer in range(c["num_hidden_layers"]):
        p = f"layers.{layer}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        proj = lambda name: h @ w[p + f"self_attn.{name}.weight"].T + w.get(p + f"self_attn.{name}.bias", 0)
        q = proj("q_proj").reshape(n, heads, d).transpose(1, 0, 2)
        k = proj("k_proj").reshape(n, kv, d).transpose(1, 0, 2)
        v = proj("v_proj").reshape(n, kv, d).transpose(1, 0, 2)
        if p + "self_attn.q_norm.weight" in w:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q, theta), rope(k, theta)
        k, v = np.repeat(k, heads // kv, 0), np.repeat(v, heads // kv, 0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        if causal:
            scores = scores + np.triu(np.full((n, n), -np.inf), 1)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(n, heads * d)
        x = x + context @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (up * gate / (1 + np.exp(-gate))) @ w[p + "mlp.down_proj.weight"].T
    last = rms_norm(x, w["norm.weight"], eps)[-1]
    return last / np.linalg.norm(last)


def main():
    job = json.load(sys.stdin)
    config = json.loads((Path(job["model_dir"]) / "config.json").read_text())
    w = weights(job["model_dir"])
    tokenizer = Tokenizer.from_file(str(Path(job["model_dir"]) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    vectors, all_ids = [], []
    for text in job["texts"]:
        ids = tokenizer.encode(job["prefix"] + text).ids
        if not ids or ids[-1] != job["eos"]:
            ids = ids[: job["max_length"] - 1] + [job["eos"]]
        else:
            ids = ids[: job["max_length"] - 1] + [job["eos"]] if len(ids) > job["max_length"] else ids
        all_ids.append(ids)
        vectors.append(embed(np.array(ids), w, config, job["causal"]).tolist())
    json.dump({"vectors": vectors, "ids": all_ids}, sys.stdout)


if __name__ == "__main__":
    main()
