"""The command line: usage errors exit 2, dataset errors exit 3 and name the file and line."""

import argparse
import json
import os
import tempfile
import unittest

from berth_bert.__main__ import parser

from .helpers import run_cli


class CliTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.vocab = os.path.join(self.dir.name, "vocab.txt")
        with open(self.vocab, "w") as f:
            f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]) + "\n")

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def squad(self, *extra: str):
        return run_cli("squad", "--vocab", self.vocab, "--model-config", "tiny", "--output-dir",
                       os.path.join(self.dir.name, "out"), "--device", "cpu", *extra)

    def test_every_flag_of_every_task_is_documented(self):
        sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
        self.assertGreaterEqual(len(sub.choices), 8)
        for task, p in sub.choices.items():
            for action in p._actions:
                self.assertTrue(action.help, f"{task} {action.option_strings} has no help")

    def test_unknown_flags_and_bad_values_exit_2(self):
        r = run_cli("squad", "--no-such-flag")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unrecognized arguments: --no-such-flag", r.stderr)
        r = self.squad("--train-file", "x.json", "--batch-size", "0")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--batch-size must be at least 1", r.stderr)
        r = run_cli("nosuchtask")
        self.assertEqual(r.returncode, 2)

    def test_missing_dataset_exits_3_naming_the_file(self):
        missing = os.path.join(self.dir.name, "nope.json")
        r = self.squad("--train-file", missing)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(f"{missing}: no such file", r.stderr)

    def test_malformed_json_names_the_file_and_line(self):
        bad = self.write("bad.json", '{"data": [\n  {"paragraphs": [\n    {"context": "x",,}\n]}]}\n')
        r = self.squad("--predict-file", bad)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(f"{bad}:3: not valid JSON", r.stderr)

    def test_wrong_squad_shape_and_misplaced_answer(self):
        r = self.squad("--predict-file", self.write("shape.json", json.dumps({"version": "1.1"})))
        self.assertEqual(r.returncode, 3)
        self.assertIn('expected {"data": [...]}', r.stderr)
        doc = {"data": [{"paragraphs": [{"context": "a b", "qas": [
            {"id": "q1", "question": "a?", "answers": [{"text": "b", "answer_start": 0}]}]}]}]}
        r = self.squad("--predict-file", self.write("off.json", json.dumps(doc)))
        self.assertEqual(r.returncode, 3)
        self.assertIn("question q1: answer 'b' is not at context offset 0", r.stderr)

    def test_classification_row_errors_name_the_line(self):
        tsv = self.write("train.tsv", "sentence\tlabel\na b\t1\na\n")
        r = run_cli("classify", "--train-file", tsv, "--vocab", self.vocab, "--model-config", "tiny",
                    "--output-dir", os.path.join(self.dir.name, "out"), "--device", "cpu")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(f"{tsv}:3: row lacks", r.stderr)

    def test_conll_errors_name_the_line(self):
        conll = self.write("train.conll", "a B-PER\nb O\n\nlonely\n")
        r = run_cli("ner", "--train-file", conll, "--vocab", self.vocab, "--model-config", "tiny",
                    "--output-dir", os.path.join(self.dir.name, "out"), "--device", "cpu")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(f"{conll}:4: expected 'token ... tag'", r.stderr)


if __name__ == "__main__":
    unittest.main()
