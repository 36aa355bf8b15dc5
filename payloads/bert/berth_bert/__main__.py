"""``python3 -m berth_bert <task> [flags]`` — see README.md for tasks, outputs and exit codes."""

from __future__ import annotations

import argparse
import sys
import traceback

from .errors import EXIT_FAILURE, BerthError
from .tasks import bench, build_vocab, classify, demo, export_onnx, ner, pretrain, squad

TASKS = {
    "pretrain": (pretrain, "masked-LM pretraining (optional NSP) on raw text"),
    "squad": (squad, "SQuAD v1.1/v2 fine-tuning and evaluation (exact match, F1)"),
    "classify": (classify, "sequence classification, GLUE-style (accuracy, F1, MCC)"),
    "ner": (ner, "token classification on CoNLL-style data (entity F1)"),
    "export-onnx": (export_onnx, "export a fine-tuned model folder to ONNX"),
    "build-vocab": (build_vocab, "build a WordPiece vocab.txt from raw text"),
    "bench": (bench, "training and inference throughput on synthetic data"),
    "demo": (demo, "offline demo: pretrain a tiny BERT, fine-tune on demo SQuAD, print F1"),
}

EPILOG = """exit codes: 0 done; 1 unexpected error; 2 usage error; 3 dataset missing or malformed;
4 weights unreadable or mismatched; 75 stopped by SIGTERM after saving a checkpoint (run the same
command again to resume). Metrics are DLLogger 'DLLL {...}' lines on stdout (rank 0)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m berth_bert", description="berth's BERT trainer.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="task", metavar="task", required=True)
    for name, (module, help_text) in TASKS.items():
        tp = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(tp)
        tp.set_defaults(func=module.run)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except BerthError as e:
        print(f"berth_bert {args.task}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
