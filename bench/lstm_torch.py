#!/usr/bin/python3
"""lstm_torch.py - the PyTorch peer of bench/lstm.sh: a character LM on the same corpus and settings.

The model is the issue's benchmark model, built the Keras way so both sides start alike:
  Embedding(V, 64) -> LSTM(256, return_sequences) -> LSTM(256, return_sequences) -> Dense(V, softmax)
  - Embedding: uniform(-0.05, 0.05) (Keras's default);
  - LSTM: glorot-uniform input kernels, orthogonal recurrent kernels, zero biases with the forget
    gate's bias at 1 (Keras's unit_forget_bias; PyTorch's second bias b_hh stays 0);
  - Dense: glorot-uniform kernel, zero bias;
  - Adam(lr 1e-3, eps 1e-7), sparse categorical cross-entropy, batch 32 x 64 steps.
Data, the same rule as amuse's character vocabulary (amuse/charvocab.h): every code point is a
token except C0 controls other than tab and newline, DEL and the BOM; ids 0..3 are reserved (pad,
unk, start, end) and ids from 4 go to code points by count (descending), then code point. The last
--heldout fraction of the characters is held out; training windows of seq+1 characters start at
random offsets in the rest (seeded).

Measured:
  train_chars_s  = steps * batch * seq / seconds in training steps;
  bpc            = held-out cross-entropy in bits per character, over non-overlapping windows of
                   seq characters, each starting from a zero state;
  sample_chars_s = characters per second sampling one stream step by step (state carried,
                   temperature 1, multinomial draw), after a 16-character prompt, with the
                   --threads threads; sample_chars_s_1thread the same on one thread (amuse
                   samples one stream on one thread: the fair pair is reported too);
  rss_mb         = peak resident memory of this process (ru_maxrss).

  /usr/bin/python3 bench/lstm_torch.py --corpus data/text/poems-zh.txt --steps 200 --json out.json
"""

import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn


def excluded(cp):
    return (cp < 0x20 and cp not in (9, 10)) or cp == 0x7F or cp == 0xFEFF


def vocabulary(text):
    counts = {}
    for ch in text:
        cp = ord(ch)
        if not excluded(cp):
            counts[cp] = counts.get(cp, 0) + 1
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {cp: 4 + i for i, (cp, _) in enumerate(order)}


class CharLM(nn.Module):
    def __init__(self, vocab, embed=64, units=256):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm1 = nn.LSTM(embed, units, batch_first=True)
        self.lstm2 = nn.LSTM(units, units, batch_first=True)
        self.dense = nn.Linear(units, vocab)
        nn.init.uniform_(self.embed.weight, -0.05, 0.05)
        for lstm in (self.lstm1, self.lstm2):
            # PyTorch stacks the gates (i, f, g, o) along dim 0 of weight_ih (4u, in).
            u = lstm.hidden_size
            nn.init.xavier_uniform_(lstm.weight_ih_l0)  # glorot over the whole (in, 4u) kernel
            w = torch.empty(u, 4 * u)
            nn.init.orthogonal_(w)  # Keras's recurrent kernel (u, 4u), one orthogonal matrix
            with torch.no_grad():
                lstm.weight_hh_l0.copy_(w.t())
                lstm.bias_ih_l0.zero_()
                lstm.bias_hh_l0.zero_()
                lstm.bias_ih_l0[u:2 * u] = 1.0
        nn.init.xavier_uniform_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)

    def forward(self, x, state=None):
        s1, s2 = state if state is not None else (None, None)
        h, s1 = self.lstm1(self.embed(x), s1)
        h, s2 = self.lstm2(h, s2)
        return self.dense(h), (s1, s2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--heldout", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sample-chars", type=int, default=2000)
    ap.add_argument("--json")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    with open(a.corpus, encoding="utf-8") as f:
        text = f.read()
    vocab = vocabulary(text)
    V = 4 + len(vocab)
    ids = torch.tensor([vocab.get(ord(c), 1) for c in text], dtype=torch.long)
    cut = int(len(ids) * (1.0 - a.heldout))
    train, held = ids[:cut], ids[cut:]
    if len(train) <= a.seq + 1 or len(held) < a.seq:
        sys.exit("lstm_torch: corpus too small for seq %d" % a.seq)

    model = CharLM(V)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(a.seed)
    offsets = torch.arange(a.seq + 1)
    train_seconds = 0.0
    last_loss = float("nan")
    for _ in range(a.steps):
        starts = torch.randint(0, len(train) - a.seq - 1, (a.batch,), generator=gen)
        win = train[starts[:, None] + offsets[None, :]]
        t0 = time.perf_counter()
        logits, _ = model(win[:, :-1])
        loss = loss_fn(logits.reshape(-1, V), win[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        train_seconds += time.perf_counter() - t0
        last_loss = loss.item()

    # Held-out bits per character: non-overlapping windows from a zero state.
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        n_win = (len(held) - 1) // a.seq
        for b0 in range(0, n_win, 64):
            idx = torch.arange(b0, min(n_win, b0 + 64)) * a.seq
            win = held[idx[:, None] + torch.arange(a.seq + 1)[None, :]]
            logits, _ = model(win[:, :-1])
            total += nn.functional.cross_entropy(logits.reshape(-1, V), win[:, 1:].reshape(-1),
                                                 reduction="sum").item()
            count += win[:, 1:].numel()
    bpc = total / count / math.log(2)

    # One stream, step by step: with --threads threads, then with one.
    def sample_seconds_with(threads):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            prompt = held[:16].unsqueeze(0)
            logits, state = model(prompt)
            nxt = torch.multinomial(torch.softmax(logits[0, -1], -1), 1, generator=gen)
            t0 = time.perf_counter()
            for _ in range(a.sample_chars):
                logits, state = model(nxt.view(1, 1), state)
                nxt = torch.multinomial(torch.softmax(logits[0, -1], -1), 1, generator=gen)
            return time.perf_counter() - t0
    sample_seconds = sample_seconds_with(a.threads)
    sample_seconds_1 = sample_seconds_with(1)

    out = {
        "vocab": V,
        "steps": a.steps,
        "batch": a.batch,
        "seq": a.seq,
        "threads": a.threads,
        "train_chars_s": a.steps * a.batch * a.seq / train_seconds,
        "final_train_loss": last_loss,
        "bpc": bpc,
        "sample_chars_s": a.sample_chars / sample_seconds,
        "sample_chars_s_1thread": a.sample_chars / sample_seconds_1,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "torch": torch.__version__,
    }
    print(json.dumps(out, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
