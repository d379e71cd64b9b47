#!/usr/bin/python3
"""voice_tools.py - helpers of bench/voice.sh (stdlib + numpy; torch only for `torch-train`).

  select MANIFEST SPLIT EVERY OUT.csv          rows of a split (every Nth), absolute paths
  noise OUT.wav SECONDS SEED                   speech babble: 5 flite voices reading text
  mix IN.csv NOISE.wav SNR_DB SEED OUTDIR      each clip + a random stretch of noise at SNR
  sphinx-score IN.csv HYP MODE                 accuracy of pocketsphinx hypotheses (JSON)
  kws-tune IN.csv OUT.list HYP THRESHOLD ...   per-word keyword-spotting thresholds (JSON)
  flite-set OUTDIR                             command and unknown words spoken by flite
  torch-train SAMPLES EPOCHS CLASSES           DNN throughput in PyTorch, 1 thread (JSON)

It does not run amuse or pocketsphinx (voice.sh does).
"""
import json
import os
import subprocess
import sys
import time
import wave

import numpy as np

COMMANDS = "yes no up down left right on off stop go jump fire play pause next back".split()


def read_wav(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768


def write_wav(path, x, rate=16000):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 32767 / 32768) * 32768).astype("<i2").tobytes())


def rows(path):
    with open(path) as f:
        head = f.readline().strip().split(",")
        for line in f:
            yield dict(zip(head, line.strip().split(",")))


def select(manifest, split, every, out):
    base = os.path.dirname(os.path.abspath(manifest))
    n = 0
    with open(out, "w") as f:
        f.write("path,label,split\n")
        for i, r in enumerate(x for x in rows(manifest) if x["split"] == split):
            if i % int(every) == 0:
                f.write("%s,%s,%s\n" % (os.path.join(base, r["path"]), r["label"], split))
                n += 1
    print(n)


def noise(out, seconds, seed):
    """Babble the training never heard: another synthesizer (flite, not espeak-ng) and another
    text than data/make_voice.sh's babble."""
    text = ("the quick brown fox leaps over the lazy dog while somebody in the kitchen talks "
            "about the weather and the price of bread and a radio plays the evening news ")
    mix = np.zeros(int(float(seconds) * 16000))
    for i, v in enumerate(["kal16", "awb", "rms", "slt", "kal"]):
        tmp, part = out + ".flite.wav", out + ".part.wav"
        subprocess.run(["flite", "-voice", v, "-t", text * 4, "-o", tmp], check=True)
        subprocess.run(["sox", tmp, "-r", "16000", "-b", "16", "-c", "1", part], check=True)
        x = read_wav(part)
        os.unlink(tmp)
        os.unlink(part)
        x = np.roll(np.resize(x, len(mix)), int(seed) * 7919 + i * 16000 * 3)
        mix += x / (np.sqrt(np.mean(x ** 2)) + 1e-9)
    write_wav(out, 0.1 * mix / np.sqrt(np.mean(mix ** 2)))


def mix(csv, noise_path, snr, seed, outdir):
    rng = np.random.default_rng(int(seed))
    nz = read_wav(noise_path)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "manifest.csv"), "w") as f:
        f.write("path,label,split\n")
        for i, r in enumerate(rows(csv)):
            x = read_wav(r["path"])
            at = rng.integers(0, len(nz) - len(x))
            n = nz[at:at + len(x)]
            px, pn = np.mean(x ** 2), np.mean(n ** 2)
            y = x + (n * np.sqrt(px / (pn * 10 ** (float(snr) / 10))) if px > 0 else 0)
            peak = np.max(np.abs(y))
            if peak > 0.99:
                y *= 0.99 / peak
            p = os.path.join(outdir, "%05d.wav" % i)
            write_wav(p, y)
            f.write("%s,%s,%s\n" % (os.path.abspath(p), r["label"], r["split"]))


def sphinx_score(csv, hyp, mode):
    got = read_hyp(hyp)
    n = correct = rejected_unknown = unknown = 0
    for i, r in enumerate(rows(csv)):
        words = got.get("%05d" % i, [])
        if r["label"] in COMMANDS:
            n += 1
            correct += bool(words) and words[0] == r["label"]
        elif r["label"] == "_unknown_":
            unknown += 1
            rejected_unknown += not any(w in COMMANDS for w in words)
    print(json.dumps({"mode": mode, "commands": n, "accuracy": correct / n if n else None,
                      "unknown": unknown,
                      "reject_unknown": rejected_unknown / unknown if unknown else None}))


FLITE_UNKNOWN = "house table water garden yellow monkey river candle".split()


def flite_set(outdir):
    """Another synthesizer than the training's: each of flite's voices says every command
    and 8 unknown words once, silence trimmed, 0.2 s of silence before it (clips of 0.3-0.9 s;
    readers pad them to 1 s), peak -3 dBFS."""
    os.makedirs(outdir, exist_ok=True)
    n = 0
    with open(os.path.join(outdir, "manifest.csv"), "w") as f:
        f.write("path,label,split\n")
        for v in ["kal16", "awb", "rms", "slt", "kal"]:
            for w in COMMANDS + FLITE_UNKNOWN:
                tmp, p = os.path.join(outdir, "say.wav"), os.path.join(outdir, "%05d.wav" % n)
                subprocess.run(["flite", "-voice", v, "-t", w, "-o", tmp], check=True)
                subprocess.run(["sox", "-V1", tmp, "-r", "16000", "-b", "16", "-c", "1", p,
                                "silence", "1", "0.005", "0.3%", "reverse", "silence", "1",
                                "0.005", "0.3%", "reverse", "pad", "0.2", "trim", "0", "1",
                                "norm", "-3"], check=True)
                os.unlink(tmp)
                label = w if w in COMMANDS else "_unknown_"
                f.write("%s,%s,test\n" % (os.path.abspath(p), label))
                n += 1
    print(n)


def read_hyp(hyp):
    got = {}
    with open(hyp) as f:
        for line in f:
            line = line.strip()
            if line.endswith(")"):
                got[line[line.rindex("(") + 1:].split()[0]] = line[:line.rindex("(")].split()
    return got


def kws_tune(csv, out, *runs):
    """Per word, the threshold (of those tried, one run each with every word at it) that
    maximises hits on that word's clips minus false alarms on every other clip (other words,
    unknown words, silence); ties go to the stricter threshold. Keyword searches run
    independently in pocketsphinx, so each word's detections do not depend on the others'."""
    labels = [r["label"] for r in rows(csv)]
    tried = [(float(runs[k + 1]), read_hyp(runs[k])) for k in range(0, len(runs), 2)]
    chosen = {}
    for w in COMMANDS:
        best = None
        for t, got in sorted(tried, key=lambda x: -x[0]):
            hit = fa = 0
            for i, lab in enumerate(labels):
                fired = w in got.get("%05d" % i, [])
                hit += fired and lab == w
                fa += fired and lab != w
            if best is None or hit - fa > best[0]:
                best = (hit - fa, t, hit, fa)
        chosen[w] = {"threshold": best[1], "hits": best[2], "false_alarms": best[3]}
    with open(out, "w") as f:
        for w in COMMANDS:
            f.write("%s /%g/\n" % (w, chosen[w]["threshold"]))
    print(json.dumps(chosen))


def torch_train(samples, epochs, classes):
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n = int(samples)
    x = torch.randn(n, 49 * 20)
    y = torch.randint(0, int(classes), (n,))
    model = torch.nn.Sequential(torch.nn.BatchNorm1d(980), torch.nn.Linear(980, 256),
                                torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(256, 128),
                                torch.nn.ReLU(), torch.nn.Linear(128, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, int(classes)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.process_time()
    for _ in range(int(epochs)):
        perm = torch.randperm(n)
        for b in range(0, n, 64):
            idx = perm[b:b + 64]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    cpu = time.process_time() - t0
    print(json.dumps({"samples_per_s": n * int(epochs) / cpu, "cpu_s": cpu,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"select": select, "noise": noise, "mix": mix, "sphinx-score": sphinx_score,
     "kws-tune": kws_tune, "flite-set": flite_set, "torch-train": torch_train}[cmd](*args)
