"""Helpers of bench/gpu-bert.sh.
  python3 bench/gpu-bert.py summary OUT_DIR   our throughput against the Hugging Face reference measured
                                              in the same run (berth-bench.json, bert-anchor.json)
  python3 bench/gpu-bert.py hf-check OUT_DIR  saves a small fine-tuned-shape model with berth_bert and loads
                                              it with transformers (when installed): same logits?"""

import json
import os
import sys

# (our key, the reference's key, what it is)
PAIRS = [("train_eager_seq_per_s", "large_squad_ft_seq384_bs32", "BERT-Large SQuAD fine-tune, seq 384, bs 32, bf16"),
         ("train_compiled_seq_per_s", "large_squad_ft_seq384_bs32", "  same, ours torch.compile'd"),
         ("infer_eager_seq_per_s", "large_squad_infer_seq384_bs32", "BERT-Large SQuAD inference, seq 384, bs 32, bf16"),
         ("infer_bf16_weights_seq_per_s", "large_squad_infer_seq384_bs32", "  same, ours with bf16 weights"),
         ("infer_compiled_seq_per_s", "large_squad_infer_seq384_bs32", "  same, ours torch.compile'd")]


def hf_check(out: str) -> None:
    import tempfile

    import torch
    from berth_bert.config import BertConfig
    from berth_bert.model import BertForQuestionAnswering
    from berth_bert.tokenizer import SPECIAL_TOKENS, WordPieceTokenizer
    from berth_bert.weights import save_pretrained
    try:
        import transformers
    except ImportError:
        print("hf-check: transformers is not installed here; skipped")
        return
    torch.manual_seed(0)
    ours = BertForQuestionAnswering(BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                               intermediate_size=128, vocab_size=64)).eval()
    with tempfile.TemporaryDirectory() as d:
        save_pretrained(ours, WordPieceTokenizer({t: i for i, t in enumerate(list(SPECIAL_TOKENS) + ["a"])}), d)
        theirs = transformers.BertForQuestionAnswering.from_pretrained(d).eval()
    ids = torch.randint(5, 64, (2, 24))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    with torch.no_grad():
        a = torch.stack(ours(ids, attention_mask=mask))
        r = theirs(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
        b = torch.stack([r.start_logits, r.end_logits])
    diff = float((a - b).abs().max())
    result = {"transformers": transformers.__version__, "max_abs_diff": diff, "ok": diff < 1e-4}
    print("hf-check:", json.dumps(result))
    with open(os.path.join(out, "hf-check.json"), "w") as f:
        json.dump(result, f)


def summary(out: str) -> None:
    ours = {}
    for name in ("berth-bench.json", "berth-bench-compiled.json"):
        path = os.path.join(out, name)
        if os.path.isfile(path):
            with open(path) as f:
                ours.update(json.load(f))
    ref_path = os.path.join(out, "bert-anchor.json")
    ref = json.load(open(ref_path)) if os.path.isfile(ref_path) else {}
    print(f"device: {ours.get('device')}  torch {ours.get('torch')}  reference: "
          f"{'transformers ' + ref['transformers'] if ref else 'not run'}")
    summary = {"device": ours.get("device"), "rows": []}
    for mine, theirs, what in PAIRS:
        if mine not in ours:
            continue
        r = ref.get(theirs)
        ratio = ours[mine] / r if r else None
        summary["rows"].append({"what": what.strip(), "ours": ours[mine], "reference": r, "ratio": ratio})
        print(f"{what:<52} ours {ours[mine]:>8.1f} seq/s   reference {r or float('nan'):>8.1f}   "
              f"ratio {ratio if ratio is not None else float('nan'):.2f}x")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    {"summary": summary, "hf-check": hf_check}[sys.argv[1]](sys.argv[2])
