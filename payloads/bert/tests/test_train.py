"""Checkpointing, resume and SIGTERM, through the real CLI in subprocesses."""

import os
import signal
import tempfile
import time
import unittest

import torch

from berth_bert.checkpoint import SLOW_SAVE_ENV, latest_checkpoint, load_checkpoint
from berth_bert.errors import EXIT_PREEMPTED

from .helpers import dll_records, popen_cli, run_cli, step_losses, write_corpus, write_micro_config


class TrainingRunTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.corpus = write_corpus(self.dir.name)
        self.config = write_micro_config(self.dir.name)

    def tearDown(self):
        self.dir.cleanup()

    def args(self, out: str, steps: int, save_every: int = 0) -> list[str]:
        return ["pretrain", "--train-file", self.corpus, "--model-config", self.config, "--output-dir", out,
                "--vocab-size", "64", "--max-seq-length", "32", "--batch-size", "8", "--max-steps", str(steps),
                "--log-every", "1", "--save-every", str(save_every), "--seed", "7", "--device", "cpu", "--lr", "1e-3"]

    def test_kill_during_a_save_leaves_the_previous_checkpoint_loadable(self):
        out = os.path.join(self.dir.name, "out")
        first = run_cli(*self.args(out, 4))
        self.assertEqual(first.returncode, 0, first.stderr)
        proc = popen_cli(*self.args(out, 8), env={SLOW_SAVE_ENV: "60"})
        root = os.path.join(out, "checkpoints")
        deadline = time.time() + 60
        # Wait until the step-8 save has written state.pt and is pausing before its commit.
        while not any(n.startswith(".tmp-step-00000008") and os.path.exists(os.path.join(root, n, "state.pt"))
                      for n in os.listdir(root)):
            self.assertIsNone(proc.poll(), "the run ended before its slow save")
            self.assertLess(time.time(), deadline, "the slow save never started")
            time.sleep(0.05)
        proc.kill()
        proc.communicate()
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        latest = latest_checkpoint(out)
        self.assertEqual(os.path.basename(latest), "step-00000004")
        state, meta = load_checkpoint(latest)
        self.assertEqual((meta["step"], state["position"]["step"]), (4, 4))
        # The next run resumes from step 4, cleans the half-written save up and finishes.
        again = run_cli(*self.args(out, 8))
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("resumed from", again.stderr)
        self.assertEqual(sorted(step_losses(again.stdout)), [5, 6, 7, 8])
        self.assertEqual(sorted(n for n in os.listdir(root) if n.startswith("step-")),
                         ["step-00000004", "step-00000008"])
        self.assertFalse([n for n in os.listdir(root) if n.startswith(".tmp")])

    def test_sigterm_checkpoints_and_resume_reproduces_the_uninterrupted_losses(self):
        steps = 400
        straight = run_cli(*self.args(os.path.join(self.dir.name, "a"), steps))
        self.assertEqual(straight.returncode, 0, straight.stderr)
        expected = step_losses(straight.stdout)
        self.assertEqual(len(expected), steps)

        out = os.path.join(self.dir.name, "b")
        proc = popen_cli(*self.args(out, steps))
        lines = []
        for line in proc.stdout:  # SIGTERM as soon as training is under way
            lines.append(line)
            if '"step": [0, 3]' in line:
                proc.send_signal(signal.SIGTERM)
                break
        rest, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, EXIT_PREEMPTED, err)
        self.assertIn("SIGTERM", err)
        before = step_losses("".join(lines) + rest)
        stopped = max(before)
        self.assertLess(stopped, steps)
        state, meta = load_checkpoint(latest_checkpoint(out))
        self.assertEqual(meta["step"], stopped)

        resumed = run_cli(*self.args(out, steps))
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        after = step_losses(resumed.stdout)
        self.assertEqual(min(after), stopped + 1)
        combined = {**before, **after}
        self.assertEqual(sorted(combined), sorted(expected))
        for step, loss in expected.items():
            self.assertAlmostEqual(combined[step], loss, places=5, msg=f"step {step}")
        # The loss fell: the model learned the tiny corpus.
        self.assertLess(sum(list(expected.values())[-20:]) / 20, sum(list(expected.values())[:20]) / 20 - 0.5)
        summary = [r["data"] for r in dll_records(resumed.stdout) if r["type"] == "LOG" and r["step"] == []]
        self.assertIn("final_loss", summary[0])
        # A finished run started again does no more training.
        done = run_cli(*self.args(out, steps))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(step_losses(done.stdout), {})
        self.assertTrue(os.path.isfile(os.path.join(out, "model", "model.safetensors")))


class DistributedTest(unittest.TestCase):
    def test_two_ranks_over_env_rendezvous_train_log_once_and_checkpoint(self):
        # torchrun's environment contract, set by hand: Debian's torch 1.13 torchrun breaks on Python 3.11
        # (its redirect flags parse to None), and what the trainer relies on is only these variables.
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "out")
            args = ["pretrain", "--train-file", write_corpus(d), "--model-config", write_micro_config(d),
                    "--output-dir", out, "--vocab-size", "64", "--max-seq-length", "32", "--batch-size", "4",
                    "--max-steps", "6", "--log-every", "1", "--device", "cpu"]
            env = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29517", "OMP_NUM_THREADS": "1"}
            ranks = [popen_cli(*args, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in (0, 1)]
            outs = [p.communicate(timeout=120) for p in ranks]
            for p, (_, err) in zip(ranks, outs):
                self.assertEqual(p.returncode, 0, err[-3000:])
            steps = [rec["step"][1] for rec in dll_records(outs[0][0])
                     if rec["type"] == "LOG" and isinstance(rec["step"], list) and len(rec["step"]) == 2]
            self.assertEqual(steps, [1, 2, 3, 4, 5, 6])
            self.assertEqual(dll_records(outs[1][0]), [])  # rank 1 prints no metrics
            _, meta = load_checkpoint(latest_checkpoint(out))
            self.assertEqual(meta["step"], 6)
            self.assertTrue(os.path.isfile(os.path.join(out, "model", "model.safetensors")))


class AutocastTest(unittest.TestCase):
    def test_bf16_autocast_is_close_to_fp32(self):
        from berth_bert.config import BertConfig
        from berth_bert.model import BertForQuestionAnswering
        from berth_bert.train import autocast

        torch.manual_seed(0)
        model = BertForQuestionAnswering(BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                    intermediate_size=128, vocab_size=128)).eval()
        ids = torch.randint(5, 128, (4, 24))
        mask = torch.ones_like(ids)
        mask[3, 12:] = 0
        with torch.no_grad():
            ref = torch.stack(model(ids, attention_mask=mask))
            with autocast(torch.device("cpu"), "bf16"):
                low = torch.stack(model(ids, attention_mask=mask))
        self.assertEqual(low.dtype, torch.float32)  # heads return fp32 logits either way
        self.assertFalse(torch.equal(low, ref))  # autocast really ran in bf16
        self.assertLess(float((low - ref).abs().max()), 0.05 * float(ref.abs().max()))
        cos = torch.nn.functional.cosine_similarity(low.flatten(), ref.flatten(), dim=0)
        self.assertGreater(float(cos), 0.999)

    def test_bf16_autocast_pretraining_loss_is_close_to_fp32(self):
        from berth_bert.config import BertConfig
        from berth_bert.model import BertForPreTraining
        from berth_bert.train import autocast

        torch.manual_seed(0)
        model = BertForPreTraining(BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                              intermediate_size=128, vocab_size=128), nsp=True).eval()
        ids = torch.randint(5, 128, (4, 24))
        labels = torch.full_like(ids, -100)
        labels[:, 3::5] = ids[:, 3::5]
        nsp = torch.tensor([0, 1, 0, 1])
        with torch.no_grad():
            ref = model(ids, mlm_labels=labels, nsp_labels=nsp)
            with autocast(torch.device("cpu"), "bf16"):
                low = model(ids, mlm_labels=labels, nsp_labels=nsp)
        self.assertNotEqual(float(low), float(ref))
        self.assertAlmostEqual(float(low), float(ref), delta=0.02 * float(ref))


if __name__ == "__main__":
    unittest.main()
