import unittest

import torch

from berth_bert.data import squad
from berth_bert.tokenizer import SPECIAL_TOKENS, WordPieceTokenizer

WORDS = ["the", "harbour", "of", "vel", "##mora", "is", "run", "by", "ada", "brant", ".", "who", "runs", "?",
         "it", "ships", "copper", "and", "salt", "every", "year"]


class SquadFeaturesTest(unittest.TestCase):
    def setUp(self):
        self.tok = WordPieceTokenizer({t: i for i, t in enumerate(list(SPECIAL_TOKENS) + WORDS)})
        filler = "It ships copper and salt every year. " * 6
        self.context = filler + "The harbour of Velmora is run by Ada Brant. " + filler
        start = self.context.index("Ada Brant")
        self.ex = squad.Example("q1", "Who runs Velmora?", self.context, ["Ada Brant"], start)

    def test_windows_with_doc_stride_map_the_answer_exactly(self):
        feats = squad.build_features([self.ex], self.tok, max_seq=32, doc_stride=8, max_query=16, training=True)
        ids = feats.tensors["input_ids"]
        self.assertGreater(ids.shape[0], 3)  # a long context becomes several overlapping windows
        self.assertEqual(ids.shape[1], 32)
        hits = 0
        for f in range(ids.shape[0]):
            s, e = int(feats.tensors["start_positions"][f]), int(feats.tensors["end_positions"][f])
            if s == 0:
                self.assertEqual(e, 0)
                continue
            hits += 1
            off = feats.offsets[f]
            self.assertEqual(self.context[off[s][0]:off[e][1]], "Ada Brant")
            # [CLS] question [SEP] context [SEP]: segment 1 starts after the question
            self.assertEqual(int(feats.tensors["token_type_ids"][f, s]), 1)
        self.assertGreaterEqual(hits, 1)
        # Every context token is the max-context token in exactly one window.
        n_ctx = len(self.tok.tokenize(self.context))
        self.assertEqual(sum(sum(mc) for mc in feats.max_context), n_ctx)

    def test_decode_picks_the_best_span_across_windows(self):
        feats = squad.build_features([self.ex], self.tok, max_seq=32, doc_stride=8, max_query=16, training=False)
        n = len(feats.example_index)
        start, end = torch.zeros(n, 32), torch.zeros(n, 32)
        train = squad.build_features([self.ex], self.tok, max_seq=32, doc_stride=8, max_query=16, training=True)
        f = next(i for i in range(n) if int(train.tensors["start_positions"][i]) and feats.max_context[i][
            int(train.tensors["start_positions"][i])])
        start[f, int(train.tensors["start_positions"][f])] = 5.0
        end[f, int(train.tensors["end_positions"][f])] = 5.0
        self.assertEqual(squad.decode([self.ex], feats, start, end), {"q1": "Ada Brant"})
        # v2: a stronger [CLS] score means "no answer".
        start[:, 0] = end[:, 0] = 10.0
        self.assertEqual(squad.decode([self.ex], feats, start, end, version_2=True), {"q1": ""})


if __name__ == "__main__":
    unittest.main()
