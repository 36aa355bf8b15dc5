import io
import json
import unittest

import torch

from berth_bert.data.mlm import masker
from berth_bert.dllog import DLLogger
from berth_bert.tokenizer import SPECIAL_TOKENS, WordPieceTokenizer


class MaskingTest(unittest.TestCase):
    def setUp(self):
        self.tok = WordPieceTokenizer({t: i for i, t in enumerate(list(SPECIAL_TOKENS) + [f"w{i}" for i in range(95)])})
        ids = torch.randint(5, 100, (400, 64), generator=torch.Generator().manual_seed(0))
        ids[:, 0] = self.tok.cls_id
        ids[:, 50] = self.tok.sep_id
        ids[:, 51:] = self.tok.pad_id
        self.batch = {"input_ids": ids, "token_type_ids": torch.zeros_like(ids)}

    def test_bert_masking_rates_and_specials_untouched(self):
        out = masker(self.tok)(self.batch, torch.Generator().manual_seed(1))
        ids, labels, orig = out["input_ids"], out["mlm_labels"], self.batch["input_ids"]
        chosen = labels != -100
        real = 400 * 49
        self.assertAlmostEqual(int(chosen.sum()) / real, 0.15, delta=0.01)
        self.assertTrue(torch.equal(labels[chosen], orig[chosen]))  # labels are the original tokens
        self.assertFalse(bool(chosen[:, 0].any() or chosen[:, 50:].any()))  # never [CLS], [SEP], [PAD]
        self.assertTrue(torch.equal(ids[~chosen], orig[~chosen]))
        n = int(chosen.sum())
        masked = int((ids[chosen] == self.tok.mask_id).sum()) / n
        kept = int((ids[chosen] == orig[chosen]).sum()) / n
        self.assertAlmostEqual(masked, 0.8, delta=0.03)
        self.assertAlmostEqual(kept, 0.1, delta=0.03)  # a random swap may also draw the same token
        self.assertTrue(torch.equal(out["attention_mask"], (orig != self.tok.pad_id).long()))

    def test_same_generator_seed_same_masks(self):
        m = masker(self.tok)
        a = m(self.batch, torch.Generator().manual_seed(5))
        b = m(self.batch, torch.Generator().manual_seed(5))
        c = m(self.batch, torch.Generator().manual_seed(6))
        self.assertTrue(torch.equal(a["input_ids"], b["input_ids"]))
        self.assertFalse(torch.equal(a["mlm_labels"], c["mlm_labels"]))


class DLLoggerTest(unittest.TestCase):
    def test_json_stream_format(self):
        buf = io.StringIO()
        log = DLLogger(stream=buf)
        log.metadata("F1", "%")
        log.log([1, 20], {"step_loss": 0.5})
        log.log([], {"F1": 88.0})
        log.parameters({"lr": 1e-3, "func": print})
        lines = buf.getvalue().splitlines()
        self.assertTrue(all(line.startswith("DLLL {") for line in lines))
        meta, step, summary, params = (json.loads(line[5:]) for line in lines)
        self.assertEqual(list(meta), ["timestamp", "datetime", "elapsedtime", "type", "metric", "metadata"])
        self.assertEqual((meta["type"], meta["metric"], meta["metadata"]), ("METADATA", "F1", {"unit": "%"}))
        self.assertEqual(list(step), ["timestamp", "datetime", "elapsedtime", "type", "step", "data"])
        for rec in (meta, step):
            self.assertIsInstance(rec["timestamp"], str)
            self.assertIsInstance(rec["elapsedtime"], str)
            float(rec["timestamp"])
        self.assertEqual((step["type"], step["step"], step["data"]), ("LOG", [1, 20], {"step_loss": 0.5}))
        self.assertEqual(summary["step"], [])
        self.assertEqual((params["step"], params["data"]), ("PARAMETER", {"lr": 1e-3}))

    def test_ranks_other_than_zero_write_nothing(self):
        buf = io.StringIO()
        DLLogger(enabled=False, stream=buf).log([], {"F1": 1.0})
        self.assertEqual(buf.getvalue(), "")


if __name__ == "__main__":
    unittest.main()
