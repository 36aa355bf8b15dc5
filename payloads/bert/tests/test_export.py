import os
import tempfile
import unittest

from berth_bert.config import BertConfig
from berth_bert.model import BertForQuestionAnswering
from berth_bert.tokenizer import SPECIAL_TOKENS, WordPieceTokenizer
from berth_bert.weights import save_pretrained

from .helpers import run_cli


class ExportOnnxTest(unittest.TestCase):
    def test_export_writes_an_onnx_file_with_dynamic_axes(self):
        with tempfile.TemporaryDirectory() as d:
            folder = os.path.join(d, "model")
            cfg = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             max_position_embeddings=64, vocab_size=16)
            save_pretrained(BertForQuestionAnswering(cfg), WordPieceTokenizer(
                {t: i for i, t in enumerate(list(SPECIAL_TOKENS) + ["a"])}), folder)
            out = os.path.join(d, "model.onnx")
            r = run_cli("export-onnx", "--init-from", folder, "--output", out, "--trace-seq-length", "16")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out, "rb") as f:
                raw = f.read()
            self.assertGreater(len(raw), 10_000)
            # ONNX is protobuf: the graph's input/output names and the symbolic axis names are in it.
            for name in (b"input_ids", b"attention_mask", b"token_type_ids", b"start_logits", b"end_logits",
                         b"batch", b"sequence"):
                self.assertIn(name, raw)
            try:
                import onnxruntime  # noqa: F401 — present on some hosts; absent in our CPU image
            except ImportError:
                return
            import numpy as np
            sess = onnxruntime.InferenceSession(out)
            ids = np.ones((3, 20), dtype=np.int64)
            outs = sess.run(None, {"input_ids": ids, "attention_mask": ids, "token_type_ids": 0 * ids})
            self.assertEqual(outs[0].shape, (3, 20))


if __name__ == "__main__":
    unittest.main()
