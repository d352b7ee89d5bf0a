"""Makes the Qwen fixtures under tests/fixtures/: tiny random Qwen2 (Qodo-Embed-1's layout:
unprefixed keys, auto_map to the gte remote code) and Qwen3 snapshots with F16 weights, and the
vectors transformers' own Qwen2Model / Qwen3Model compute for them in PyTorch (float32), with the
mask each model is run with: bidirectional over real tokens for Qwen2 (what the gte remote code
and sentence-transformers compute), causal for Qwen3. The fixtures are committed, so CI needs no
PyTorch. Run once with torch and transformers installed:
    python scripts/make-qwen-fixtures.py .cache/models/all-MiniLM-L6-v2/tokenizer.json
The token ids follow the addon's rule: the text's tokens (MiniLM's tokenizer, whose template
ends every sequence with [SEP] = the config's eos_token_id), truncated at max_length."""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import Qwen2Config, Qwen2Model, Qwen3Config, Qwen3Model

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
EOS = 102
TEXTS = [
    "fn add(a: i32, b: i32) -> i32 { a + b }",
    "Reads a file and returns its lines.",
    "",
    "let total = values.iter().map(|v| v * weight).sum::<f32>() / count as f32; " * 6,
    "class Stack<T> { push(x: T) { this.items.push(x); } pop(): T { return this.items.pop(); } }",
    "x",
]
COMMON = dict(vocab_size=30528, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
              rms_norm_eps=1e-6, rope_theta=1000000.0, hidden_act="silu", eos_token_id=EOS,
              tie_word_embeddings=False)


def ids_of(tokenizer_path):
    tokenizer = Tokenizer.from_file(tokenizer_path)
    tokenizer.no_padding()
    tokenizer.enable_truncation(512)
    return [e.ids for e in tokenizer.encode_batch(TEXTS)]


def run(model, ids, causal):
    longest = max(len(i) for i in ids)
    input_ids = torch.tensor([i + [0] * (longest - len(i)) for i in ids])
    keep = torch.tensor([[1] * len(i) + [0] * (longest - len(i)) for i in ids], dtype=torch.bool)
    allowed = keep[:, None, None, :].expand(len(ids), 1, longest, longest)
    if causal:
        allowed = allowed & torch.tril(torch.ones(longest, longest, dtype=torch.bool))
    mask = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
    with torch.no_grad():
        states = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    last = torch.stack([states[b, len(i) - 1] for b, i in enumerate(ids)])
    return torch.nn.functional.normalize(last, dim=-1)


def make(name, config_cls, model_cls, extra, causal, ids):
    torch.manual_seed(7 if causal else 5)
    config = config_cls(**COMMON, **extra)
    config._attn_implementation = "eager"
    model = model_cls(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.5 if p.ndim == 2 else 0.1) + (1.0 if p.ndim == 1 and p.shape[0] in (32, 8, 16) else 0.0))
        # store in F16, and compute from exactly those values
        for p in model.parameters():
            p.copy_(p.half().float())
    vectors = run(model, ids, causal)
    d = OUT / name
    (d / "1_Pooling").mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(d / "model.safetensors"))
    cfg = {**COMMON, **extra, "model_type": config.model_type}
    if not causal:
        cfg["auto_map"] = {"AutoModel": "Alibaba-NLP/gte-Qwen2-1.5B-instruct--modeling_qwen.Qwen2Model"}
    (d / "config.json").write_text(json.dumps(cfg, indent=1))
    (d / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, "pooling_mode_lasttoken": True}))
    (d / "reference.json").write_text(json.dumps({"texts": TEXTS, "ids": ids, "vectors": vectors.tolist(),
                                                   "made_by": f"transformers {__import__('transformers').__version__} {model_cls.__name__}, torch {torch.__version__}, float32, eager attention"}))


def main():
    ids = ids_of(sys.argv[1])
    make("qwen2-qodo-layout", Qwen2Config, Qwen2Model, {}, False, ids)
    make("qwen3", Qwen3Config, Qwen3Model, {"head_dim": 16, "attention_bias": False}, True, ids)


if __name__ == "__main__":
    main()
