"""Each fine-tuning task end to end on a few rows with a micro model: trains, scores, writes its outputs,
and the saved model folder reproduces the predictions."""

import json
import os
import tempfile
import unittest

from .helpers import dll_records, run_cli, write_corpus, write_micro_config

COMMON = ["--max-seq-length", "48", "--batch-size", "8", "--max-steps", "6", "--log-every", "2", "--device", "cpu",
          "--lr", "1e-3"]


class TaskTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.config = write_micro_config(self.dir.name)
        self.vocab = os.path.join(self.dir.name, "vocab.txt")
        r = run_cli("build-vocab", "--input", write_corpus(self.dir.name), "--output", self.vocab,
                    "--vocab-size", "64")
        self.assertEqual(r.returncode, 0, r.stderr)

    def tearDown(self):
        self.dir.cleanup()

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir.name, *parts)

    def write(self, name: str, text: str) -> str:
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def summary(self, stdout: str) -> dict:
        out: dict = {}
        for r in dll_records(stdout):
            if r["type"] == "LOG" and r["step"] == []:
                out.update(r["data"])
        return out

    def test_squad_trains_scores_and_the_saved_model_reproduces_predictions(self):
        paras = []
        for i in range(12):
            ctx = f"the harbour of velmora lies on kesh . its harbourmaster is ada brant . ships carry copper {i}"
            paras.append({"context": ctx, "qas": [{"id": f"q{i}", "question": "who is the harbourmaster ?",
                                                   "answers": [{"text": "ada brant",
                                                                "answer_start": ctx.index("ada brant")}]}]})
        data = self.write("qa.json", json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paras}]}))
        out = self.path("squad")
        r = run_cli("squad", "--train-file", data, "--predict-file", data, "--vocab", self.vocab, "--model-config",
                    self.config, "--output-dir", out, "--doc-stride", "16", *COMMON)
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.summary(r.stdout)
        for key in ("e2e_train_time", "training_sequences_per_second", "final_loss", "exact_match", "F1",
                    "inference_sequences_per_second"):
            self.assertIn(key, s)
        with open(os.path.join(out, "predictions.json")) as f:
            preds = json.load(f)
        self.assertEqual(sorted(preds), sorted(f"q{i}" for i in range(12)))
        with open(os.path.join(out, "results.json")) as f:
            self.assertEqual(json.load(f)["F1"], s["F1"])
        again = run_cli("squad", "--predict-file", data, "--init-from", os.path.join(out, "model"),
                        "--output-dir", self.path("eval"), "--max-seq-length", "48", "--doc-stride", "16",
                        "--device", "cpu")
        self.assertEqual(again.returncode, 0, again.stderr)
        with open(self.path("eval", "predictions.json")) as f:
            self.assertEqual(json.load(f), preds)
        self.assertTrue(os.listdir(os.path.join(out, "cache")))  # features cached under the output dir

    def test_classify(self):
        rows = "".join(f"ships carry {'copper' if i % 2 else 'salt'} {i}\t{'metal' if i % 2 else 'food'}\n"
                       for i in range(24))
        train = self.write("train.tsv", "sentence\tlabel\n" + rows)
        out = self.path("cls")
        r = run_cli("classify", "--train-file", train, "--eval-file", train, "--vocab", self.vocab,
                    "--model-config", self.config, "--output-dir", out, *COMMON)
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.summary(r.stdout)
        self.assertTrue({"accuracy", "F1", "mcc"} <= set(s))
        with open(os.path.join(out, "model", "config.json")) as f:
            self.assertEqual(json.load(f)["id2label"], {"0": "food", "1": "metal"})
        with open(os.path.join(out, "predictions.json")) as f:
            self.assertEqual(len(json.load(f)), 24)

    def test_ner(self):
        sent = "ada B-PER\nbrant I-PER\nruns O\nvelmora B-LOC\n\n"
        data = self.write("train.conll", "-DOCSTART- O\n\n" + sent * 16)
        out = self.path("ner")
        r = run_cli("ner", "--train-file", data, "--eval-file", data, "--vocab", self.vocab,
                    "--model-config", self.config, "--output-dir", out, *COMMON)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue({"precision", "recall", "F1"} <= set(self.summary(r.stdout)))
        with open(os.path.join(out, "predictions.json")) as f:
            preds = json.load(f)
        self.assertEqual([len(p) for p in preds], [4] * 16)


if __name__ == "__main__":
    unittest.main()
