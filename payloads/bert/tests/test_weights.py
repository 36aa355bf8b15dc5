import io
import json
import os
import tempfile
import unittest

import torch

from berth_bert import safetensors
from berth_bert.config import BertConfig
from berth_bert.errors import WeightsError
from berth_bert.model import BertForPreTraining, BertForQuestionAnswering
from berth_bert.tokenizer import SPECIAL_TOKENS, WordPieceTokenizer
from berth_bert.weights import load_into, read_pretrained, save_pretrained, to_hf_state_dict

CFG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
           max_position_embeddings=64, vocab_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def inputs():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 60, (3, 16), generator=g)
    mask = torch.ones_like(ids)
    mask[2, 10:] = 0
    return dict(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=mask)


class SafetensorsTest(unittest.TestCase):
    def test_round_trip_keeps_dtype_shape_and_bits(self):
        tensors = {"a": torch.randn(3, 5), "b": torch.randn(4, 2).to(torch.bfloat16),
                   "c": torch.arange(7, dtype=torch.int64), "d": torch.randn(2, 3).half(), "e": torch.zeros(0)}
        buf = io.BytesIO()
        safetensors.save_file(tensors, buf)
        raw = buf.getvalue()
        n = int.from_bytes(raw[:8], "little")
        self.assertEqual(n % 8, 0)
        header = json.loads(raw[8:8 + n])
        self.assertEqual(header["b"]["dtype"], "BF16")
        self.assertEqual(header["a"]["shape"], [3, 5])
        with tempfile.NamedTemporaryFile(suffix=".safetensors") as f:
            f.write(raw)
            f.flush()
            back = safetensors.load_file(f.name)
        self.assertEqual(set(back), set(tensors))
        for k, t in tensors.items():
            self.assertEqual(back[k].dtype, t.dtype)
            self.assertTrue(torch.equal(back[k], t), k)

    def test_reads_a_hand_written_file(self):
        # {"x": F32 [2]} holding 1.0 and -2.0, written byte by byte as the spec describes.
        header = b'{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
        raw = len(header).to_bytes(8, "little") + header + b"\x00\x00\x80\x3f" + b"\x00\x00\x00\xc0"
        with tempfile.NamedTemporaryFile(suffix=".safetensors") as f:
            f.write(raw)
            f.flush()
            self.assertEqual(safetensors.load_file(f.name)["x"].tolist(), [1.0, -2.0])


class HuggingFaceLayoutTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.tok = WordPieceTokenizer({t: i for i, t in enumerate(list(SPECIAL_TOKENS) + ["a", "b"])})

    def tearDown(self):
        self.dir.cleanup()

    def test_names_are_hugging_face_names(self):
        names = set(to_hf_state_dict(BertForPreTraining(BertConfig(**CFG), nsp=True)))
        for n in ("bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.1.attention.self.value.bias",
                  "bert.embeddings.LayerNorm.weight", "bert.pooler.dense.weight", "cls.predictions.decoder.weight",
                  "cls.predictions.bias", "cls.predictions.transform.dense.weight", "cls.seq_relationship.weight"):
            self.assertIn(n, names)
        self.assertFalse([n for n in names if "qkv" in n])

    def test_save_load_round_trip_reproduces_outputs(self):
        torch.manual_seed(1)
        model = BertForQuestionAnswering(BertConfig(**CFG)).eval()
        folder = os.path.join(self.dir.name, "model")
        save_pretrained(model, self.tok, folder)
        self.assertEqual(sorted(os.listdir(folder)),
                         ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"])
        with open(os.path.join(folder, "config.json")) as f:
            self.assertEqual(json.load(f)["architectures"], ["BertForQuestionAnswering"])
        cfg, state, vocab = read_pretrained(folder)
        self.assertEqual(vocab, os.path.join(folder, "vocab.txt"))
        torch.manual_seed(2)  # a different init, so only loading can make outputs equal
        again = BertForQuestionAnswering(cfg).eval()
        self.assertEqual(load_into(again, state, folder), [])
        with torch.no_grad():
            for a, b in zip(model(**inputs()), again(**inputs())):
                self.assertTrue(torch.equal(a, b))

    def test_pretrained_encoder_into_a_task_model_leaves_only_the_head_fresh(self):
        pre = BertForPreTraining(BertConfig(**CFG))
        fresh = load_into(BertForQuestionAnswering(BertConfig(**CFG)), to_hf_state_dict(pre), "pretrain")
        self.assertEqual(sorted(fresh), ["qa_outputs.bias", "qa_outputs.weight"])

    def test_dle_checkpoint_with_old_names_and_unpadded_vocab(self):
        torch.manual_seed(3)
        model = BertForPreTraining(BertConfig(**CFG)).eval()
        hf = to_hf_state_dict(model)
        dle = {}
        for name, t in hf.items():  # how NVIDIA DLE / DDP / old TF ports spell things
            name = name.replace("intermediate.dense.", "intermediate.dense_act.").replace("LayerNorm.weight", "LayerNorm.gamma")
            if name in ("bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.weight"):
                t = t[:61]  # 61-token vocab: the model pads to 64
            if name in ("cls.predictions.bias", "cls.predictions.decoder.bias"):
                t = t[:61]
            dle["module." + name] = t
        path = os.path.join(self.dir.name, "ckpt.pt")
        torch.save({"model": dle, "epoch": 3}, path)
        _, state, _ = read_pretrained(path)
        again = BertForPreTraining(BertConfig(**CFG)).eval()
        self.assertEqual(load_into(again, state, path), [])
        emb = again.bert.embeddings.word_embeddings.weight
        self.assertTrue(torch.equal(emb[:61], model.bert.embeddings.word_embeddings.weight[:61]))
        self.assertEqual(float(emb[61:].abs().sum()), 0.0)
        self.assertIs(again.cls.predictions.word_embeddings.weight, emb)  # still tied

    def test_a_mismatched_checkpoint_is_a_clear_error(self):
        small = to_hf_state_dict(BertForQuestionAnswering(BertConfig(**{**CFG, "hidden_size": 16})))
        with self.assertRaisesRegex(WeightsError, "has shape"):
            load_into(BertForQuestionAnswering(BertConfig(**CFG)), small, "x")
        with self.assertRaisesRegex(WeightsError, "not a BERT checkpoint"):
            load_into(BertForQuestionAnswering(BertConfig(**CFG)), {"foo": torch.zeros(1)}, "x")


if __name__ == "__main__":
    unittest.main()
