/* features.c - log-mel spectrogram and MFCC of 16 kHz samples (amuse/audio.h has the formulas
 * and defaults: TensorFlow speech_commands' front end), and the recipe's "features" object.
 *
 * A front end precomputes everything that does not depend on the samples: the periodic Hann
 * window, KissFFT's real-FFT plan, the mel filters (stored sparsely: each FFT bin feeds at most
 * two neighbouring filters, so a filter is a first bin and a run of weights) and the DCT-II
 * matrix. Per frame: window, FFT, |X| or |X|^2, filters, log, DCT.
 *
 * It does not pre-emphasise, dither, normalise per utterance or add deltas; a model that wants
 * those learns them. It does not pad the signal: a frame starts every stride while a whole
 * window fits.
 */
#include "amuse/audio.h"
#include "audio/audio_internal.h"
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <kiss_fftr.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

struct amuse_audio_frontend {
    struct amuse_audio_features_options o;
    int window, stride, fft, bins, coefficients;
    float *hann;        /* [window] */
    float *frame;       /* [fft] scratch: the windowed, zero-padded frame */
    float *tail;        /* [window] scratch: a frame that runs past the end of a short clip */
    kiss_fft_cpx *spec; /* [bins] scratch: the spectrum */
    float *mag;         /* [bins] scratch */
    float *mel;         /* [mel_bands] scratch */
    int *mel_first;     /* [mel_bands]: first bin of each filter */
    int *mel_count;     /* [mel_bands]: bins in each filter */
    int *mel_offset;    /* [mel_bands]: where its weights start in mel_weight */
    float *mel_weight;  /* all filters' weights, one run per filter */
    float *dct;         /* [mel_bands][mfcc]: band-major, for the vector loop */
    kiss_fftr_cfg plan;
};

/* ---------------------------------------------------------------- options */

void amuse_audio_features_defaults(struct amuse_audio_features_options *o)
{
    memset(o, 0, sizeof *o);
    o->sample_rate = AMUSE_AUDIO_RATE;
    o->window_ms = 30.0;
    o->stride_ms = 10.0;
    o->fft_size = 0;
    o->mel_bands = 40;
    o->lower_hz = 20.0;
    o->upper_hz = 4000.0;
    o->log_floor = 1e-12;
    o->power = 0;
    o->mfcc = 40;
}

/* Window and stride in samples: rate * ms / 1000 rounded down, as speech_commands does. */
static int ms_to_samples(int rate, double ms)
{
    double v = floor((double)rate * ms / 1000.0 + 1e-9);
    return v > 1e9 ? 1000000000 : (int)v;
}

static int next_pow2(int n)
{
    int p = 1;
    while (p < n)
        p *= 2;
    return p;
}

int amuse_audio_features_check(const struct amuse_audio_features_options *o)
{
    if (o->sample_rate < AMUSE_AUDIO_MIN_RATE || o->sample_rate > AMUSE_AUDIO_MAX_RATE)
        return am__fail(AMUSE_EINVAL, "features: key 'sample_rate': %d is outside [%d, %d]",
                        o->sample_rate, AMUSE_AUDIO_MIN_RATE, AMUSE_AUDIO_MAX_RATE);
    if (!(o->window_ms > 0) || !(o->window_ms <= 1000))
        return am__fail(AMUSE_EINVAL, "features: key 'window_ms': %g is outside (0, 1000]",
                        o->window_ms);
    if (!(o->stride_ms > 0) || !(o->stride_ms <= 1000))
        return am__fail(AMUSE_EINVAL, "features: key 'stride_ms': %g is outside (0, 1000]",
                        o->stride_ms);
    int window = ms_to_samples(o->sample_rate, o->window_ms);
    if (window < 16 || window > AMUSE_AUDIO_MAX_FFT)
        return am__fail(AMUSE_EINVAL,
                        "features: key 'window_ms': %g ms is %d samples at %d Hz; must be in "
                        "[16, %d]",
                        o->window_ms, window, o->sample_rate, AMUSE_AUDIO_MAX_FFT);
    if (ms_to_samples(o->sample_rate, o->stride_ms) < 1)
        return am__fail(AMUSE_EINVAL, "features: key 'stride_ms': %g ms is under one sample",
                        o->stride_ms);
    if (o->fft_size != 0) {
        if (o->fft_size < window || o->fft_size > AMUSE_AUDIO_MAX_FFT ||
            next_pow2(o->fft_size) != o->fft_size)
            return am__fail(AMUSE_EINVAL,
                            "features: key 'fft_size': %d must be a power of two in [%d (the "
                            "window), %d], or 0 for automatic",
                            o->fft_size, window, AMUSE_AUDIO_MAX_FFT);
    }
    if (o->mel_bands < 1 || o->mel_bands > AMUSE_AUDIO_MAX_MEL)
        return am__fail(AMUSE_EINVAL, "features: key 'mel_bands': %d is outside [1, %d]",
                        o->mel_bands, AMUSE_AUDIO_MAX_MEL);
    if (!(o->lower_hz >= 0))
        return am__fail(AMUSE_EINVAL, "features: key 'lower_hz': %g must be >= 0", o->lower_hz);
    if (!(o->upper_hz > o->lower_hz) || !(o->upper_hz <= o->sample_rate / 2.0))
        return am__fail(AMUSE_EINVAL,
                        "features: key 'upper_hz': %g must be above lower_hz (%g) and at most "
                        "half the sample rate (%g)",
                        o->upper_hz, o->lower_hz, o->sample_rate / 2.0);
    if (!(o->log_floor > 0) || !isfinite(o->log_floor))
        return am__fail(AMUSE_EINVAL, "features: key 'log_floor': %g must be positive",
                        o->log_floor);
    if (o->power != 0 && o->power != 1)
        return am__fail(AMUSE_EINVAL, "features: key 'spectrum': power must be 0 or 1");
    if (o->mfcc < 0 || o->mfcc > o->mel_bands)
        return am__fail(AMUSE_EINVAL, "features: key 'mfcc': %d is outside [0, mel_bands = %d]",
                        o->mfcc, o->mel_bands);
    return AMUSE_OK;
}

/* ---------------------------------------------------------------- the recipe's object */

static int json_number(const cJSON *v, const char *where, const char *key, double *out)
{
    if (!cJSON_IsNumber(v))
        return am__fail(AMUSE_EINVAL, "%s: key '%s': expected a number", where, key);
    *out = v->valuedouble;
    return AMUSE_OK;
}

static int json_int(const cJSON *v, const char *where, const char *key, int *out)
{
    double d = 0;
    int rc = json_number(v, where, key, &d);
    if (rc)
        return rc;
    if (d != floor(d) || d < -1e9 || d > 1e9)
        return am__fail(AMUSE_EINVAL, "%s: key '%s': expected an integer, got %g", where, key, d);
    *out = (int)d;
    return AMUSE_OK;
}

static int json_string(const cJSON *v, const char *where, const char *key, const char *a,
                       const char *b, int *which)
{
    if (!cJSON_IsString(v))
        return am__fail(AMUSE_EINVAL, "%s: key '%s': expected a string (\"%s\" or \"%s\")", where,
                        key, a, b);
    if (strcmp(v->valuestring, a) == 0)
        *which = 0;
    else if (strcmp(v->valuestring, b) == 0)
        *which = 1;
    else
        return am__fail(AMUSE_EINVAL, "%s: key '%s': unknown value '%s' (known: %s, %s)", where,
                        key, v->valuestring, a, b);
    return AMUSE_OK;
}

int am__audio_features_from_json(const struct cJSON *obj, const char *where,
                                 struct amuse_audio_features_options *o)
{
    amuse_audio_features_defaults(o);
    if (!where)
        where = "features";
    if (!cJSON_IsObject(obj))
        return am__fail(AMUSE_EINVAL, "%s: expected a JSON object", where);
    struct amuse_audio_features_options r;
    amuse_audio_features_defaults(&r);
    int type = -1, rc = AMUSE_OK; /* type: 0 mfcc, 1 log_mel, -1 not given */
    int mfcc_given = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, obj)
    {
        const char *k = v->string;
        if (strcmp(k, "type") == 0)
            rc = json_string(v, where, k, "mfcc", "log_mel", &type);
        else if (strcmp(k, "sample_rate") == 0)
            rc = json_int(v, where, k, &r.sample_rate);
        else if (strcmp(k, "window_ms") == 0)
            rc = json_number(v, where, k, &r.window_ms);
        else if (strcmp(k, "stride_ms") == 0)
            rc = json_number(v, where, k, &r.stride_ms);
        else if (strcmp(k, "fft_size") == 0)
            rc = json_int(v, where, k, &r.fft_size);
        else if (strcmp(k, "mel_bands") == 0)
            rc = json_int(v, where, k, &r.mel_bands);
        else if (strcmp(k, "lower_hz") == 0)
            rc = json_number(v, where, k, &r.lower_hz);
        else if (strcmp(k, "upper_hz") == 0)
            rc = json_number(v, where, k, &r.upper_hz);
        else if (strcmp(k, "log_floor") == 0)
            rc = json_number(v, where, k, &r.log_floor);
        else if (strcmp(k, "spectrum") == 0)
            rc = json_string(v, where, k, "magnitude", "power", &r.power);
        else if (strcmp(k, "mfcc") == 0) {
            rc = json_int(v, where, k, &r.mfcc);
            mfcc_given = 1;
        } else
            rc = am__fail(AMUSE_EINVAL,
                          "%s: unknown key '%s' (known: type, sample_rate, window_ms, stride_ms, "
                          "fft_size, mel_bands, lower_hz, upper_hz, log_floor, spectrum, mfcc)",
                          where, k);
        if (rc)
            return rc;
    }
    if (type == 1 && mfcc_given && r.mfcc != 0)
        return am__fail(AMUSE_EINVAL, "%s: key 'mfcc': type log_mel takes no DCT coefficients",
                        where);
    if (type == 1)
        r.mfcc = 0;
    if (type == 0 && r.mfcc == 0)
        return am__fail(AMUSE_EINVAL, "%s: key 'mfcc': type mfcc needs at least 1 coefficient",
                        where);
    if (!mfcc_given && r.mfcc > r.mel_bands) /* a smaller mel_bands alone keeps every band */
        r.mfcc = r.mel_bands;
    rc = amuse_audio_features_check(&r);
    if (rc) { /* "features: key ..." -> "<where>: key ..." */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", amuse_last_error() + strlen("features"));
        return am__fail(rc, "%s%s", where, msg);
    }
    *o = r;
    return AMUSE_OK;
}

int amuse_audio_features_parse(const char *json, size_t len, const char *where,
                               struct amuse_audio_features_options *o)
{
    amuse_audio_features_defaults(o);
    if (!where)
        where = "features";
    cJSON *doc = NULL;
    int rc = am__json_parse_object(json, len, 16, &doc);
    if (rc)
        return am__fail_prefix(rc, "%s", where);
    rc = am__audio_features_from_json(doc, where, o);
    cJSON_Delete(doc);
    return rc;
}

/* ---------------------------------------------------------------- front end */

static double hz_to_mel(double hz)
{
    return 2595.0 * log10(1.0 + hz / 700.0);
}

void amuse_audio_frontend_free(struct amuse_audio_frontend *fe)
{
    if (!fe)
        return;
    kiss_fftr_free(fe->plan);
    free(fe->hann);
    free(fe->frame);
    free(fe->tail);
    free(fe->spec);
    free(fe->mag);
    free(fe->mel);
    free(fe->mel_first);
    free(fe->mel_count);
    free(fe->mel_offset);
    free(fe->mel_weight);
    free(fe->dct);
    free(fe);
}

/* Triangular filters, linear in mel, peak 1 at the centre. Filter m spans the mel points
 * m .. m + 2 of mel_bands + 2 equally spaced points from lower_hz to upper_hz. */
static int build_filters(struct amuse_audio_frontend *fe)
{
    const struct amuse_audio_features_options *o = &fe->o;
    int m_count = o->mel_bands;
    double lo = hz_to_mel(o->lower_hz), hi = hz_to_mel(o->upper_hz);
    double *edge = malloc((size_t)(m_count + 2) * sizeof *edge);
    double *bin_mel = malloc((size_t)fe->bins * sizeof *bin_mel);
    if (!edge || !bin_mel) {
        free(edge);
        free(bin_mel);
        return am__fail(AMUSE_ENOMEM, "features: out of memory");
    }
    for (int i = 0; i < m_count + 2; i++)
        edge[i] = lo + (hi - lo) * i / (m_count + 1);
    for (int k = 0; k < fe->bins; k++)
        bin_mel[k] = hz_to_mel((double)k * o->sample_rate / fe->fft);
    /* Each bin lies in at most two filters, so 2 * bins weights suffice. */
    int total = 0;
    for (int m = 0; m < m_count; m++) {
        int first = -1, count = 0;
        for (int k = 0; k < fe->bins; k++) {
            double x = bin_mel[k], w = 0;
            if (x > edge[m] && x < edge[m + 2])
                w = x <= edge[m + 1] ? (x - edge[m]) / (edge[m + 1] - edge[m])
                                     : (edge[m + 2] - x) / (edge[m + 2] - edge[m + 1]);
            if (w > 0) {
                if (first < 0)
                    first = k;
                count = k - first + 1;
                fe->mel_weight[total + count - 1] = (float)w;
            }
        }
        fe->mel_first[m] = first < 0 ? 0 : first;
        fe->mel_count[m] = count;
        fe->mel_offset[m] = total;
        total += count;
    }
    free(edge);
    free(bin_mel);
    return AMUSE_OK;
}

int amuse_audio_frontend_new(const struct amuse_audio_features_options *o,
                             struct amuse_audio_frontend **out)
{
    *out = NULL;
    int rc = amuse_audio_features_check(o);
    if (rc)
        return rc;
    struct amuse_audio_frontend *fe = calloc(1, sizeof *fe);
    if (!fe)
        return am__fail(AMUSE_ENOMEM, "features: out of memory");
    fe->o = *o;
    fe->window = ms_to_samples(o->sample_rate, o->window_ms);
    fe->stride = ms_to_samples(o->sample_rate, o->stride_ms);
    fe->fft = o->fft_size ? o->fft_size : next_pow2(fe->window);
    if (fe->fft < 2) /* KissFFT's real transform needs an even size */
        fe->fft = 2;
    fe->bins = fe->fft / 2 + 1;
    fe->coefficients = o->mfcc > 0 ? o->mfcc : o->mel_bands;
    size_t mb = (size_t)o->mel_bands;
    fe->hann = malloc((size_t)fe->window * sizeof *fe->hann);
    fe->frame = calloc((size_t)fe->fft, sizeof *fe->frame);
    fe->tail = malloc((size_t)fe->window * sizeof *fe->tail);
    fe->spec = malloc((size_t)fe->bins * sizeof *fe->spec);
    fe->mag = malloc((size_t)fe->bins * sizeof *fe->mag);
    fe->mel = malloc(mb * sizeof *fe->mel);
    fe->mel_first = malloc(mb * sizeof *fe->mel_first);
    fe->mel_count = malloc(mb * sizeof *fe->mel_count);
    fe->mel_offset = malloc(mb * sizeof *fe->mel_offset);
    fe->mel_weight = calloc((size_t)fe->bins * 2, sizeof *fe->mel_weight);
    if (o->mfcc > 0)
        fe->dct = malloc((size_t)o->mfcc * mb * sizeof *fe->dct);
    fe->plan = kiss_fftr_alloc(fe->fft, 0, NULL, NULL);
    if (!fe->hann || !fe->frame || !fe->tail || !fe->spec || !fe->mag || !fe->mel || !fe->mel_first ||
        !fe->mel_count || !fe->mel_offset || !fe->mel_weight || (o->mfcc > 0 && !fe->dct) ||
        !fe->plan) {
        amuse_audio_frontend_free(fe);
        return am__fail(AMUSE_ENOMEM, "features: out of memory");
    }
    for (int i = 0; i < fe->window; i++) /* periodic Hann */
        fe->hann[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / fe->window));
    rc = build_filters(fe);
    if (rc) {
        amuse_audio_frontend_free(fe);
        return rc;
    }
    double scale = sqrt(2.0 / o->mel_bands);
    for (int k = 0; k < o->mfcc; k++)
        for (int m = 0; m < o->mel_bands; m++)
            fe->dct[(size_t)m * (size_t)o->mfcc + (size_t)k] =
                (float)(scale * cos(M_PI * k * (m + 0.5) / o->mel_bands));
    *out = fe;
    return AMUSE_OK;
}

size_t amuse_audio_frontend_frames(const struct amuse_audio_frontend *fe, size_t n)
{
    return n < (size_t)fe->window ? 0 : 1 + (n - (size_t)fe->window) / (size_t)fe->stride;
}

int amuse_audio_frontend_coefficients(const struct amuse_audio_frontend *fe)
{
    return fe->coefficients;
}

int amuse_audio_frontend_window(const struct amuse_audio_frontend *fe)
{
    return fe->window;
}

int amuse_audio_frontend_stride(const struct amuse_audio_frontend *fe)
{
    return fe->stride;
}

/* One frame: window samples in, coefficients out. */
static void frontend_frame(struct amuse_audio_frontend *fe, const float *x, float *out)
{
    /* Locals, restrict-qualified: the output cannot alias the plan, so the loops vectorise. */
    const int window = fe->window, bins = fe->bins, bands = fe->o.mel_bands, mfcc = fe->o.mfcc;
    const int power = fe->o.power;
    const float floor_value = (float)fe->o.log_floor;
    const float *restrict hann = fe->hann;
    float *restrict frame = fe->frame;
    float *restrict mag = fe->mag;
    kiss_fft_cpx *restrict spec = fe->spec;
    for (int i = 0; i < window; i++)
        frame[i] = x[i] * hann[i];
    /* frame[window .. fft) stays zero from calloc */
    kiss_fftr(fe->plan, frame, spec);
    for (int k = 0; k < bins; k++) {
        float p = spec[k].r * spec[k].r + spec[k].i * spec[k].i;
        mag[k] = power ? p : sqrtf(p);
    }
    float *restrict mel = mfcc > 0 ? fe->mel : out;
    for (int m = 0; m < bands; m++) {
        const float *restrict w = fe->mel_weight + fe->mel_offset[m];
        const float *restrict s = mag + fe->mel_first[m];
        const int count = fe->mel_count[m];
        float sum = 0;
        for (int j = 0; j < count; j++)
            sum += w[j] * s[j];
        mel[m] = logf(sum > floor_value ? sum : floor_value);
    }
    if (mfcc == 0)
        return;
    /* DCT: accumulate band by band over all coefficients at once (a vector loop over k,
     * where a dot product per k would be a serial chain of additions). */
    float *restrict c = out;
    const float *restrict dct = fe->dct;
    for (int k = 0; k < mfcc; k++)
        c[k] = 0;
    for (int m = 0; m < bands; m++) {
        const float *restrict d = dct + (size_t)m * (size_t)mfcc;
        const float v = mel[m];
        for (int k = 0; k < mfcc; k++)
            c[k] += d[k] * v;
    }
}

int amuse_audio_frontend_compute(struct amuse_audio_frontend *fe, const float *samples, size_t n,
                                 float *out, size_t out_count, size_t *frames)
{
    size_t f = amuse_audio_frontend_frames(fe, n);
    if (frames)
        *frames = 0;
    size_t c = (size_t)fe->coefficients;
    if (f > out_count / c)
        return am__fail(AMUSE_EINVAL,
                        "features: %zu samples give %zu frames x %zu coefficients; the output "
                        "holds %zu floats",
                        n, f, c, out_count);
    for (size_t i = 0; i < f; i++)
        frontend_frame(fe, samples + i * (size_t)fe->stride, out + i * c);
    if (frames)
        *frames = f;
    return AMUSE_OK;
}

int am__audio_frontend_compute_padded(struct amuse_audio_frontend *fe, const float *samples,
                                      size_t n, size_t padded, float *out, size_t out_count)
{
    size_t f = amuse_audio_frontend_frames(fe, padded), c = (size_t)fe->coefficients;
    size_t window = (size_t)fe->window;
    if (f > out_count / c)
        return am__fail(AMUSE_EINVAL,
                        "features: %zu samples give %zu frames x %zu coefficients; the output "
                        "holds %zu floats",
                        padded, f, c, out_count);
    for (size_t i = 0; i < f; i++) {
        size_t at = i * (size_t)fe->stride;
        if (at + window <= n) {
            frontend_frame(fe, samples + at, out + i * c);
            continue;
        }
        size_t have = at < n ? n - at : 0;
        if (have)
            memcpy(fe->tail, samples + at, have * sizeof *samples);
        memset(fe->tail + have, 0, (window - have) * sizeof *fe->tail);
        frontend_frame(fe, fe->tail, out + i * c);
    }
    return AMUSE_OK;
}
