"""PyTorch's rerankers on a rerank job (JSON on stdin): sentence-transformers' CrossEncoder for a
cross-encoder (`predict`, batches of 32), and Qwen3-Reranker's model-card code for a judge
(left padding, logit('yes') - logit('no') of the last token), each query's documents in one
call, timed per query after one warm-up call. Prints one JSON line."""
import json
import os
import resource
import sys
import time

# this folder's kernels.py would shadow the `kernels` package that transformers probes for
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import torch  # noqa: E402

PREFIX = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


def cross_encoder(job):
    from sentence_transformers import CrossEncoder
    model = CrossEncoder(job["model_dir"], max_length=job["max_length"], device="cpu")
    return lambda p: model.predict([(p["query"], d) for d in p["docs"]], batch_size=32,
                                   activation_fn=torch.nn.Identity(), convert_to_numpy=True).tolist()


def judge(job):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(job["model_dir"], padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(job["model_dir"], dtype=torch.float32).eval()
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    prefix = tokenizer.encode(PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(SUFFIX, add_special_tokens=False)

    def rerank(p):
        texts = [f"<Instruct>: {INSTRUCTION}\n<Query>: {p['query']}\n<Document>: {d}" for d in p["docs"]]
        inputs = tokenizer(texts, padding=False, truncation="longest_first", return_attention_mask=False,
                           max_length=job["max_length"] - len(prefix) - len(suffix))
        inputs["input_ids"] = [prefix + ids + suffix for ids in inputs["input_ids"]]
        inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt")
        with torch.no_grad():
            last = model(**inputs).logits[:, -1, :]
        return (last[:, yes] - last[:, no]).tolist()
    return rerank


def main():
    job = json.load(sys.stdin)
    torch.set_num_threads(job["threads"])
    rerank = (judge if job["kind"] == "judge" else cross_encoder)(job)
    rerank(job["pairs"][0])
    query_ms, scores = [], []
    for p in job["pairs"]:
        t = time.perf_counter()
        scores.append(rerank(p))
        query_ms.append((time.perf_counter() - t) * 1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"query_ms": query_ms, "scores": scores, "peak_rss_mb": peak}))


if __name__ == "__main__":
    main()
