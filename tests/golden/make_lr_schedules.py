#!/usr/bin/python3
"""make_lr_schedules.py - the PyTorch reference for tests/test_training.c's schedules.

Run once with Debian's Python (python3-torch), from the repository root:

    /usr/bin/python3 tests/golden/make_lr_schedules.py

It writes tests/fixtures/lr_schedules.txt, lines "<name> <step> <lr>": the learning rate
PyTorch's schedulers give the update at <step> (0-based, before scheduler.step() is called for
it). Each is the Keras schedule named in test_training.c written the PyTorch way:

  exponential    ExponentialLR(gamma 0.9)               = ExponentialDecay(0.1, 1, 0.9)
  step           StepLR(7, gamma 0.5)                   = ExponentialDecay(0.1, 7, 0.5, staircase)
  cosine         CosineAnnealingLR(40, eta_min 0.005)   = CosineDecay(0.1, 40, alpha 0.05)
  warmup_cosine  LinearLR(0.1 -> 1, 10 steps) then CosineAnnealingLR(30)
                                                        = CosineDecay(0.01, 30, warmup_target 0.1,
                                                                      warmup_steps 10)
  multistep      MultiStepLR([10, 20], gamma 0.1)       = PiecewiseConstantDecay([9, 19],
                                                                      [0.1, 0.01, 0.001])

Steps stop where PyTorch's cosine would start rising again (it is periodic; Keras holds alpha).
It does not test Keras itself (not installed here); the C test also checks the Keras formulas.
"""
import warnings

import torch

# SequentialLR in torch 1.13 steps its second scheduler with an epoch argument and warns about it.
warnings.filterwarnings("ignore", message="The epoch parameter")

OUT = "tests/fixtures/lr_schedules.txt"


def rates(make, steps, lr=0.1):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def main():
    S = torch.optim.lr_scheduler
    cases = [
        ("exponential", lambda o: S.ExponentialLR(o, gamma=0.9), 50),
        ("step", lambda o: S.StepLR(o, step_size=7, gamma=0.5), 50),
        ("cosine", lambda o: S.CosineAnnealingLR(o, T_max=40, eta_min=0.005), 41),
        ("warmup_cosine",
         lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, end_factor=1.0,
                                                 total_iters=10),
                                      S.CosineAnnealingLR(o, T_max=30, eta_min=0.0)],
                                  milestones=[10]), 41),
        ("multistep", lambda o: S.MultiStepLR(o, milestones=[10, 20], gamma=0.1), 50),
    ]
    with open(OUT, "w") as f:
        for name, make, steps in cases:
            for t, lr in enumerate(rates(make, steps)):
                f.write("%s %d %.17g\n" % (name, t, lr))


if __name__ == "__main__":
    main()
