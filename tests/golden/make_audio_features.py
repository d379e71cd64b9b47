#!/usr/bin/python3
"""make_audio_features.py - NumPy reference for the audio front end (src/audio/features.c).

Run with Debian's Python (python3-numpy), from anywhere:

    /usr/bin/python3 tests/golden/make_audio_features.py

It reads tests/fixtures/audio/speech16k.wav (16-bit PCM, 16 kHz, made by make_fixtures.sh) with
the standard `wave` module, computes features in float64 for a few settings, and writes
tests/fixtures/audio/speech16k_features.json: for each case the recipe's "features" object (the C
test feeds it to amuse_audio_features_parse, so the parser is exercised too), the frame count, the
coefficient count and the values (frames x coefficients, row-major, 7 significant digits).

Written from the formulas in include/amuse/audio.h, not from the C code: numpy.fft.rfft instead
of KissFFT, a dense filter matrix instead of sparse runs, the DCT as a matrix product. It does
not try to reproduce TensorFlow bit for bit; it checks that the C code computes what the header
says.
"""

import json
import math
import os
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
AUDIO = os.path.join(os.path.dirname(HERE), "fixtures", "audio")

DEFAULTS = dict(sample_rate=16000, window_ms=30.0, stride_ms=10.0, fft_size=0, mel_bands=40,
                lower_hz=20.0, upper_hz=4000.0, log_floor=1e-12, spectrum="magnitude", mfcc=40)

CASES = {
    # speech_commands' front end: the defaults, MFCC with 40 coefficients.
    "default_mfcc": {},
    # The log-mel spectrogram with the same frames and filters.
    "default_log_mel": {"type": "log_mel"},
    # Everything else changed: 25 ms / 12.5 ms, a larger FFT, power spectrum, 64 bands up to
    # 8 kHz, a higher floor, 13 coefficients.
    "custom_mfcc": {"type": "mfcc", "window_ms": 25, "stride_ms": 12.5, "fft_size": 1024,
                    "mel_bands": 64, "lower_hz": 60, "upper_hz": 8000, "log_floor": 1e-6,
                    "spectrum": "power", "mfcc": 13},
}


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    return x, rate


def mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def features(x, opt):
    o = dict(DEFAULTS)
    o.update({k: v for k, v in opt.items() if k != "type"})
    if opt.get("type") == "log_mel":
        o["mfcc"] = 0
    rate = o["sample_rate"]
    window = int(math.floor(rate * o["window_ms"] / 1000.0 + 1e-9))
    stride = int(math.floor(rate * o["stride_ms"] / 1000.0 + 1e-9))
    fft = o["fft_size"] or 1 << (window - 1).bit_length()
    frames = 0 if len(x) < window else 1 + (len(x) - window) // stride
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(window) / window)  # periodic
    starts = np.arange(frames) * stride
    segments = np.stack([x[s:s + window] for s in starts]) * hann
    spectrum = np.abs(np.fft.rfft(segments, n=fft, axis=1))
    if o["spectrum"] == "power":
        spectrum = spectrum ** 2
    bands = o["mel_bands"]
    edges = np.linspace(mel(o["lower_hz"]), mel(o["upper_hz"]), bands + 2)
    bin_mel = mel(np.arange(fft // 2 + 1) * rate / fft)
    filters = np.zeros((bands, fft // 2 + 1))
    for m in range(bands):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        rising = (bin_mel - left) / (centre - left)
        falling = (right - bin_mel) / (right - centre)
        filters[m] = np.clip(np.minimum(rising, falling), 0.0, None)
    log_mel = np.log(np.maximum(spectrum @ filters.T, o["log_floor"]))
    if o["mfcc"] == 0:
        return log_mel
    k = np.arange(o["mfcc"])[:, None]
    m = np.arange(bands)[None, :]
    dct = math.sqrt(2.0 / bands) * np.cos(np.pi * k * (m + 0.5) / bands)
    return log_mel @ dct.T


def main():
    x, rate = read_wav(os.path.join(AUDIO, "speech16k.wav"))
    assert rate == 16000
    out = {"source": "speech16k.wav", "samples": int(len(x)), "cases": []}
    for name, opt in CASES.items():
        f = features(x, opt)
        out["cases"].append({"name": name, "features": opt, "frames": int(f.shape[0]),
                             "coefficients": int(f.shape[1]),
                             "values": [float("%.7g" % v) for v in f.ravel()]})
        print("%s: %d x %d, range [%.3f, %.3f]" % (name, f.shape[0], f.shape[1], f.min(), f.max()))
    with open(os.path.join(AUDIO, "speech16k_features.json"), "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main()
