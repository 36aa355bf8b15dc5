"""Prints our BERT throughput against the Hugging Face reference measured in the same run.
Usage: python3 bench/gpu-bert.py OUT_DIR   (reads berth-bench.json and bert-anchor.json there)"""

import json
import os
import sys

# (our key, the reference's key, what it is)
PAIRS = [("train_eager_seq_per_s", "large_squad_ft_seq384_bs32", "BERT-Large SQuAD fine-tune, seq 384, bs 32, bf16"),
         ("train_compiled_seq_per_s", "large_squad_ft_seq384_bs32", "  same, ours torch.compile'd"),
         ("infer_eager_seq_per_s", "large_squad_infer_seq384_bs32", "BERT-Large SQuAD inference, seq 384, bs 32, bf16"),
         ("infer_bf16_weights_seq_per_s", "large_squad_infer_seq384_bs32", "  same, ours with bf16 weights"),
         ("infer_compiled_seq_per_s", "large_squad_infer_seq384_bs32", "  same, ours torch.compile'd")]


def main(out: str) -> None:
    with open(os.path.join(out, "berth-bench.json")) as f:
        ours = json.load(f)
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
    main(sys.argv[1])
