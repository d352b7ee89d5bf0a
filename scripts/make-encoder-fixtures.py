"""Makes the fixtures of the encoders under tests/fixtures/: tiny random XLM-RoBERTa (with a Dense
module: bias, sentence-transformers' default Tanh), ModernBERT and EmbeddingGemma-shaped Gemma3
(bidirectional, two Dense modules, named prompts) snapshots with F16 weights, and the vectors
sentence-transformers computes for them in PyTorch (float32) over transformers' own
XLMRobertaModel, ModernBertModel (eager attention, so no unpadding) and Gemma3TextModel: each
text alone, with the default document prompt, the query prompt and one more named prompt. The
sliding windows are a few tokens wide so that the texts run past them. The fixtures are
committed, so CI needs no PyTorch. Run once with torch, transformers and sentence-transformers:
    python scripts/make-encoder-fixtures.py .cache/models/all-MiniLM-L6-v2/tokenizer.json
Every snapshot uses that WordPiece tokenizer (its [CLS] ... [SEP] template); ids never reach the
padding id 1 that XLM-R's positions count from."""
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer, models

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
TEXTS = [
    "fn add(a: i32, b: i32) -> i32 { a + b }",
    "Reads a file and returns its lines.",
    "",
    "let total = values.iter().map(|v| v * weight).sum::<f32>() / count as f32; " * 4,
    "class Stack<T> { push(x: T) { this.items.push(x); } pop(): T { return this.items.pop(); } }",
    "x",
]
VOCAB = 30528
XLMR = dict(model_type="xlm-roberta", vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=32, max_position_embeddings=514,
            type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
            layer_norm_eps=1e-5, hidden_act="gelu", position_embedding_type="absolute")
MODERNBERT = dict(model_type="modernbert", vocab_size=VOCAB, hidden_size=16, intermediate_size=24,
                  num_hidden_layers=4, num_attention_heads=2, max_position_embeddings=512,
                  norm_eps=1e-5, norm_bias=False, attention_bias=False, mlp_bias=False,
                  hidden_activation="gelu", global_rope_theta=160000.0, local_rope_theta=10000.0,
                  local_attention=8, global_attn_every_n_layers=3, pad_token_id=0,
                  classifier_pooling="mean")
GEMMA = dict(model_type="gemma3_text", vocab_size=VOCAB, hidden_size=16, intermediate_size=32,
             num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=1, head_dim=8,
             max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=1000000.0,
             rope_local_base_freq=10000.0, query_pre_attn_scalar=8, sliding_window=8,
             layer_types=["sliding_attention", "sliding_attention", "full_attention"],
             use_bidirectional_attention=True, attention_bias=False,
             hidden_activation="gelu_pytorch_tanh", attn_logit_softcapping=None,
             final_logit_softcapping=None, rope_scaling=None, pad_token_id=0)
PROMPTS = {"query": "task: search result | query: ", "document": "title: none | text: ",
           "Code Retrieval": "task: code retrieval | query: ", "Retrieval-query": "task: search result | query: "}


def randomise(module, seed):
    """Weights large enough that attention and every norm matter, stored in F16 and computed
    from exactly those values."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1 and "norm" in name.lower():
                p.copy_(torch.randn_like(p) * 0.1 + (0.0 if "gemma" in type(module).__name__.lower() else 1.0))
            else:
                p.copy_(torch.randn_like(p) * (0.5 if p.ndim == 2 else 0.1))
            p.copy_(p.half().float())


def snapshot(name, config, tokenizer, pooling, dense=(), prompts=None):
    d = OUT / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(config, indent=1))
    shutil.copy(tokenizer, d / "tokenizer.json")
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "model_input_names": ["input_ids", "attention_mask"]}))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (d / "1_Pooling").mkdir()
    (d / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": config["hidden_size"],
         {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens"}[pooling]: True}))
    for i, spec in enumerate(dense):
        folder = f"{i + 2}_Dense"
        modules.append({"idx": i + 2, "name": str(i + 2), "path": folder, "type": "sentence_transformers.models.Dense"})
        (d / folder).mkdir()
        (d / folder / "config.json").write_text(json.dumps(spec))
    modules.append({"idx": len(modules), "name": str(len(modules)), "path": f"{len(modules)}_Normalize",
                    "type": "sentence_transformers.models.Normalize"})
    (d / "modules.json").write_text(json.dumps(modules, indent=1))
    (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512, "do_lower_case": False}))
    if prompts:
        (d / "config_sentence_transformers.json").write_text(json.dumps(
            {"prompts": prompts, "default_prompt_name": None, "similarity_fn_name": "cosine"}))
    return d


def build(d, config, pooling, dense, seed):
    """The sentence-transformers model of the snapshot, its weights random, and saved into it."""
    from transformers import AutoConfig, AutoModel
    random = AutoModel.from_config(AutoConfig.from_pretrained(str(d)), attn_implementation="eager")
    randomise(random, seed)
    save_file({k: v.half().contiguous() for k, v in random.state_dict().items()}, str(d / "model.safetensors"))
    transformer = models.Transformer(str(d), model_args={"attn_implementation": "eager", "torch_dtype": torch.float32})
    loaded = transformer.auto_model.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in random.state_dict().items()), "weights reloaded as saved"
    assert transformer.auto_model.config._attn_implementation == "eager"
    mods = [transformer, models.Pooling(config["hidden_size"], pooling_mode=pooling)]
    for i, spec in enumerate(dense):
        layer = models.Dense(spec["in_features"], spec["out_features"], bias=spec["bias"],
                             activation_function=torch.nn.Identity() if spec["activation_function"].endswith("Identity") else torch.nn.Tanh())
        torch.manual_seed(seed + 10 + i)
        with torch.no_grad():
            for p in layer.parameters():
                p.copy_((torch.randn_like(p) * 0.3).half().float())
        save_file({k: v.half().contiguous() for k, v in layer.state_dict().items()},
                  str(d / f"{i + 2}_Dense" / "model.safetensors"))
        mods.append(layer)
    mods.append(models.Normalize())
    return SentenceTransformer(modules=mods, device="cpu").eval()


def reference(d, model, prompts, made_by):
    def encode(prompt):
        return [model.encode([t], prompt=prompt, convert_to_numpy=True)[0].tolist() for t in TEXTS]
    out = {"texts": TEXTS, "made_by": made_by, "document": encode(prompts.get("document", prompts.get("passage", ""))),
           "query": encode(prompts.get("query", ""))}
    if "Code Retrieval" in prompts:
        out["Code Retrieval"] = encode(prompts["Code Retrieval"])
    out["ids"] = [model.tokenize([t])["input_ids"][0].tolist() for t in TEXTS]
    (d / "reference.json").write_text(json.dumps(out))


def make(name, config, tokenizer, pooling, seed, dense=(), prompts=None):
    d = snapshot(name, config, tokenizer, pooling, dense, prompts)
    model = build(d, config, pooling, dense, seed)
    arch = type(model[0].auto_model).__name__
    import transformers, sentence_transformers
    made_by = (f"sentence-transformers {sentence_transformers.__version__} over transformers "
               f"{transformers.__version__} {arch} (eager attention), torch {torch.__version__}, float32, each text alone")
    reference(d, model, prompts or {}, made_by)
    # only what the addon reads stays: the tokenizer is MiniLM's, copied in by the tests
    for extra in ["tokenizer.json", "tokenizer_config.json"]:
        (d / extra).unlink()
    print(name, arch, sum(f.stat().st_size for f in d.rglob("*") if f.is_file()), "bytes")


def main():
    tokenizer = sys.argv[1]
    dense_tanh = [{"in_features": 16, "out_features": 12, "bias": True,
                   "activation_function": "torch.nn.modules.activation.Tanh"}]
    make("xlm-roberta", XLMR, tokenizer, "cls", 11, dense_tanh, {"query": "query: ", "passage": "passage: "})
    make("modernbert", MODERNBERT, tokenizer, "mean", 12, (), {"query": "search_query: ", "document": "search_document: "})
    gemma_dense = [{"in_features": 16, "out_features": 48, "bias": False, "activation_function": "torch.nn.modules.linear.Identity"},
                   {"in_features": 48, "out_features": 16, "bias": False, "activation_function": "torch.nn.modules.linear.Identity"}]
    make("embeddinggemma", GEMMA, tokenizer, "mean", 13, gemma_dense, PROMPTS)


if __name__ == "__main__":
    main()
