import unittest

import torch

from berth_bert.optim import Lamb, linear_schedule, warmup_steps_for


class LambTest(unittest.TestCase):
    def test_first_step_matches_the_formula(self):
        w0 = torch.tensor([3.0, 4.0])  # ||w|| = 5
        g = torch.tensor([0.5, -1.0])
        p = torch.nn.Parameter(w0.clone())
        opt = Lamb([p], lr=0.1, weight_decay=0.0, eps=0.0)
        p.grad = g.clone()
        opt.step()
        # Step 1: bias-corrected m = g, v = g^2, so the Adam update is sign(g); the trust ratio scales
        # it to ||w|| / ||update|| = 5 / sqrt(2).
        update = torch.sign(g)
        expected = w0 - 0.1 * (5 / 2 ** 0.5) * update
        self.assertTrue(torch.allclose(p.detach(), expected, atol=1e-6))

    def test_weight_decay_enters_the_update(self):
        p = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
        q = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
        for param, wd in ((p, 0.0), (q, 0.5)):
            opt = Lamb([param], lr=0.1, weight_decay=wd)
            param.grad = torch.tensor([1.0, -1.0])
            opt.step()
        self.assertFalse(torch.allclose(p, q))


class ScheduleTest(unittest.TestCase):
    def test_linear_warmup_then_decay_to_zero(self):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = linear_schedule(opt, warmup_steps=2, total_steps=6)
        lrs = []
        for _ in range(6):
            lrs.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
        self.assertEqual(lrs, [0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
        self.assertEqual(sched.get_last_lr()[0], 0.0)

    def test_warmup_as_proportion_or_steps(self):
        self.assertEqual(warmup_steps_for(1000, 0.1), 100)
        self.assertEqual(warmup_steps_for(1000, 50), 50)


if __name__ == "__main__":
    unittest.main()
