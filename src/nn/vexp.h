/* nn/vexp.h - an exp that vectorises: the engine's elementwise passes (LSTM/GRU gates, softmax)
 * call it inside plain loops so the compiler turns them into SIMD code, where a libm expf call
 * per element would keep them scalar. Cephes's single-precision range reduction and polynomial:
 * relative error about 1e-7, like expf. Not a general libm replacement: the input is clamped to
 * [-87, 88] (results stay normal floats; exp(-87) ~ 1.6e-38 stands in for anything smaller). */
#ifndef AMUSE_NN_VEXP_H
#define AMUSE_NN_VEXP_H

#include <math.h>
#include <stdint.h>

static inline float am__vexp(float x)
{
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* n = x / ln 2 rounded to the nearest integer by adding and taking away 1.5 * 2^23 (its
     * low mantissa bits then hold n), so that neither floorf nor a float-to-int conversion is
     * needed: GCC keeps a loop with either of them scalar (they "could trap"). */
    float big = x * 1.44269504088896341f + 12582912.0f;
    float n = big - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        float f;
        int32_t i;
    } rounded = {big};
    union {
        int32_t i;
        float f;
    } scale = {(rounded.i - 0x4B400000 + 127) * (1 << 23)}; /* 2^n, n in [-126, 127] */
    return p * scale.f;
}

#endif
