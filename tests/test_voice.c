/* test_voice.c - voice data sets and streaming detection (amuse/voice.h).
 *
 * The detector is checked with a model whose weights are set by hand from the front end's own
 * output: Flatten -> Dense(2, softmax) on MFCC c0 (the frame energy), so a window is "beep"
 * exactly when enough of it holds a tone. Tone bursts at known sample positions must fire once
 * each (the suppression period), at the burst's first sample to within one 10 ms frame, the
 * same whether the stream is fed in one piece or a few samples at a time. The loader is checked
 * on manifests written here over the committed audio fixtures. Training on real speech is
 * tests/cli_listen.sh's job.
 */
#include "amuse/error.h"
#include "amuse/model.h"
#include "amuse/voice.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RATE 16000

static const char *beep_model_json =
    "{\"name\": \"beep\", \"input\": {\"type\": \"audio\", \"clip_ms\": 1000},"
    " \"features\": {\"type\": \"mfcc\", \"mfcc\": 1, \"window_ms\": 30, \"stride_ms\": 10},"
    " \"labels\": [\"_silence_\", \"beep\"],"
    " \"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
    "  {\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 98, 1]}},"
    "  {\"class_name\": \"Flatten\", \"config\": {}},"
    "  {\"class_name\": \"Dense\", \"config\": {\"name\": \"out\", \"units\": 2,"
    "   \"activation\": \"softmax\"}}]}}}";

/* Quiet noise (deterministic) with 0.3 s tone bursts starting at the given samples. */
static float *make_stream(size_t n, const size_t *bursts, int n_bursts)
{
    float *x = malloc(n * sizeof *x);
    ASSERT_TRUE(x != NULL);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 2e-4f;
    }
    for (int b = 0; b < n_bursts; b++)
        for (size_t i = 0; i < (size_t)(0.3 * RATE) && bursts[b] + i < n; i++)
            x[bursts[b] + i] += 0.5f * sinf(2.0f * 3.14159265f * 440.0f * (float)i / RATE);
    return x;
}

/* Weights: logit(beep) - logit(silence) = a (mean c0 - midpoint), where the midpoint lies
 * between the mean c0 of a silent window and of a window with 0.2 s of tone. */
static struct amuse_model *beep_model(void)
{
    struct amuse_model *m;
    ASSERT_OK(amuse_model_from_json(&m, beep_model_json, strlen(beep_model_json), "beep"));
    struct amuse_audio_features_options fo;
    size_t clip;
    ASSERT_OK(amuse_voice_model_features(m, &fo, &clip));
    ASSERT_EQ_INT((long long)clip, RATE);
    struct amuse_audio_frontend *fe;
    ASSERT_OK(amuse_audio_frontend_new(&fo, &fe));
    size_t burst = 0;
    float *quiet = make_stream(RATE, NULL, 0), *tone = make_stream(RATE, &burst, 1);
    float fq[98], ft[98];
    ASSERT_OK(amuse_voice_clip_features(fe, quiet, RATE, clip, fq, 98));
    /* 0.2 s of tone: a window must hold most of a burst to count as a beep. */
    for (size_t i = (size_t)(0.2 * RATE); i < RATE; i++)
        tone[i] = quiet[i];
    ASSERT_OK(amuse_voice_clip_features(fe, tone, RATE, clip, ft, 98));
    double mq = 0, mt = 0;
    for (int i = 0; i < 98; i++) {
        mq += fq[i] / 98.0;
        mt += ft[i] / 98.0;
    }
    ASSERT_TRUE(mt > mq + 1.0);
    double a = 20.0 / (mt - mq), mid = (mq + mt) / 2;
    struct amuse_tensor k, b;
    ASSERT_OK(amuse_model_find_weight(m, "out/kernel", &k, NULL));
    ASSERT_OK(amuse_model_find_weight(m, "out/bias", &b, NULL));
    for (int i = 0; i < 98; i++) {
        k.data[2 * i] = 0;
        k.data[2 * i + 1] = (float)(a / 98.0);
    }
    b.data[0] = 0;
    b.data[1] = (float)(-a * mid);
    amuse_audio_frontend_free(fe);
    free(quiet);
    free(tone);
    return m;
}

static int detect(struct amuse_model *m, const float *x, size_t n, size_t chunk,
                  struct amuse_voice_event *out, int max)
{
    struct amuse_voice_detector *d;
    ASSERT_OK(amuse_voice_detector_new(m, NULL, &d));
    int total = 0;
    for (size_t at = 0; at < n; at += chunk) {
        struct amuse_voice_event ev[8];
        int n_ev, dropped;
        ASSERT_OK(amuse_voice_detector_feed(d, x + at, n - at < chunk ? n - at : chunk, ev, 8,
                                            &n_ev, &dropped));
        ASSERT_EQ_INT(dropped, 0);
        for (int i = 0; i < n_ev && total < max; i++)
            out[total++] = ev[i];
    }
    ASSERT_NEAR(amuse_voice_detector_time(d), (double)n / RATE, 1e-9);
    amuse_voice_detector_free(d);
    return total;
}

TEST(detector_fires_once_per_burst_at_its_onset)
{
    struct amuse_model *m = beep_model();
    size_t bursts[3] = {(size_t)(1.25 * RATE), (size_t)(3.1 * RATE), (size_t)(5.53 * RATE)};
    size_t n = 7 * RATE;
    float *x = make_stream(n, bursts, 3);
    struct amuse_voice_event ev[16], ev2[16];
    int got = detect(m, x, n, n, ev, 16);
    ASSERT_EQ_INT(got, 3);
    for (int i = 0; i < 3; i++) {
        ASSERT_STR_EQ(ev[i].word, "beep");
        ASSERT_EQ_INT(ev[i].label, 1);
        ASSERT_NEAR(ev[i].start, (double)bursts[i] / RATE, 0.011);
        ASSERT_TRUE(ev[i].score >= 0.6f && ev[i].score <= 1.0f);
        ASSERT_TRUE(ev[i].detected > ev[i].start && ev[i].detected < ev[i].start + 1.5);
    }
    /* Chunking does not change anything: 1 sample, 333 samples, 0.1 s at a time. */
    static const size_t chunks[] = {1, 333, 1600};
    for (int c = 0; c < 3; c++) {
        ASSERT_EQ_INT(detect(m, x, n, chunks[c], ev2, 16), 3);
        for (int i = 0; i < 3; i++) {
            ASSERT_NEAR(ev2[i].start, ev[i].start, 0);
            ASSERT_NEAR(ev2[i].score, ev[i].score, 0);
        }
    }
    free(x);
    amuse_model_free(m);
}

TEST(detector_suppression_and_options)
{
    struct amuse_model *m = beep_model();
    /* Two bursts 0.5 s apart are one utterance: the average never falls in between. */
    size_t bursts[2] = {RATE, (size_t)(1.5 * RATE)};
    size_t n = 4 * RATE;
    float *x = make_stream(n, bursts, 2);
    struct amuse_voice_event ev[16];
    ASSERT_EQ_INT(detect(m, x, n, 800, ev, 16), 1);
    free(x);
    /* Three bursts fed at once with room for one event: the others are counted as dropped. */
    size_t three[3] = {RATE, 3 * RATE, 5 * RATE};
    n = 7 * RATE;
    x = make_stream(n, three, 3);
    struct amuse_voice_detect_options o;
    amuse_voice_detect_defaults(&o);
    struct amuse_voice_detector *d;
    ASSERT_OK(amuse_voice_detector_new(m, &o, &d));
    int n_ev, dropped;
    ASSERT_OK(amuse_voice_detector_feed(d, x, n, ev, 1, &n_ev, &dropped));
    ASSERT_EQ_INT(n_ev, 1);
    ASSERT_EQ_INT(dropped, 2);
    /* NaN in the stream is an error naming the sample. */
    float bad[4] = {0, 0, NAN, 0};
    ASSERT_FAILS(amuse_voice_detector_feed(d, bad, 4, ev, 1, &n_ev, NULL), AMUSE_EINVAL,
                 "not a finite number");
    amuse_voice_detector_free(d);
    o.step_ms = 5;
    ASSERT_FAILS(amuse_voice_detector_new(m, &o, &d), AMUSE_EINVAL, "step_ms");
    ASSERT_TRUE(d == NULL);
    amuse_voice_detect_defaults(&o);
    o.threshold = 1.5;
    ASSERT_FAILS(amuse_voice_detector_new(m, &o, &d), AMUSE_EINVAL, "threshold");
    free(x);
    amuse_model_free(m);
    /* A model without a features recipe is not a voice model. */
    const char *plain = "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                        "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": "
                        "[null, 4]}}, {\"class_name\": \"Dense\", \"config\": {\"units\": 2}}]}}}";
    ASSERT_OK(amuse_model_from_json(&m, plain, strlen(plain), "plain"));
    ASSERT_FAILS(amuse_voice_detector_new(m, NULL, &d), AMUSE_EINVAL, "no \"features\"");
    amuse_model_free(m);
}

/* ---------------------------------------------------------------- the data set loader */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    fputs(text, f);
    fclose(f);
}

TEST(load_manifest_splits_and_labels)
{
    char dir[] = "/tmp/amuse-voice-test.XXXXXX", path[256], text[2048];
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/manifest.csv", dir);
    /* Rows in split order test, train, validation (as make_voice.sh writes them). */
    snprintf(text, sizeof text,
             "path,label,voice,split\n"
             "%s/audio/tone16k.wav,beep,v1,test\n"
             "%s/audio/speech16k.wav,word,v2,train\n"
             "%s/audio/tone8k.wav,beep,v2,train\n"
             "%s/audio/tone48k_stereo.wav,beep,v3,validation\n",
             AMUSE_FIXTURES, AMUSE_FIXTURES, AMUSE_FIXTURES, AMUSE_FIXTURES);
    write_text(path, text);
    const char *labels[] = {"_silence_", "beep", "word"};
    struct amuse_voice_data_options o = {0};
    amuse_audio_features_defaults(&o.features);
    o.labels = labels;
    o.n_labels = 3;
    o.split = "train,validation";
    struct amuse_dataset d;
    ASSERT_OK(amuse_voice_load_dataset(&d, dir, &o));
    ASSERT_EQ_INT(d.n, 3);
    ASSERT_EQ_INT(d.n_classes, 3);
    ASSERT_EQ_INT(d.input[0].shape.dim[0], 98);
    ASSERT_EQ_INT(d.input[0].shape.dim[1], 40);
    ASSERT_EQ_INT(d.target.i32[0], 2);
    ASSERT_EQ_INT(d.target.i32[1], 1);
    ASSERT_EQ_INT(d.target.i32[2], 1); /* the validation row comes last */
    /* The features are the clip's own: the same file through the front end directly. */
    struct amuse_audio a;
    struct amuse_audio_options ao = {.target_rate = RATE};
    ASSERT_OK(amuse_audio_load(AMUSE_FIXTURES "/audio/speech16k.wav", &ao, &a));
    struct amuse_audio_frontend *fe;
    ASSERT_OK(amuse_audio_frontend_new(&o.features, &fe));
    float *f = malloc(98 * 40 * sizeof *f);
    ASSERT_OK(amuse_voice_clip_features(fe, a.samples, a.count, RATE, f, 98 * 40));
    for (int i = 0; i < 98 * 40; i++)
        ASSERT_NEAR(d.input[0].f32[i], f[i], 0);
    free(f);
    amuse_audio_frontend_free(fe);
    amuse_audio_release(&a);
    amuse_dataset_release(&d);

    o.split = "test";
    o.limit = 0;
    ASSERT_OK(amuse_voice_load_dataset(&d, path, &o));
    ASSERT_EQ_INT(d.n, 1);
    amuse_dataset_release(&d);

    /* Bad input: an unknown label (file and line), no header, a missing clip, no clips. */
    o.split = NULL;
    o.n_labels = 2;
    ASSERT_FAILS(amuse_voice_load_dataset(&d, path, &o), AMUSE_EFORMAT,
                 "manifest.csv:3: label 'word' is not one of the model's labels");
    ASSERT_EQ_INT(d.n, 0);
    o.n_labels = 3;
    write_text(path, "file,class\nx.wav,beep\n");
    ASSERT_FAILS(amuse_voice_load_dataset(&d, path, &o), AMUSE_EFORMAT, "no 'path' and 'label'");
    write_text(path, "path,label\nmissing.wav,beep\n");
    ASSERT_TRUE(amuse_voice_load_dataset(&d, path, &o) != AMUSE_OK);
    ASSERT_CONTAINS(amuse_last_error(), "missing.wav");
    write_text(path, "path,label,split\nmissing.wav,beep,train\n");
    o.split = "test";
    ASSERT_FAILS(amuse_voice_load_dataset(&d, path, &o), AMUSE_ENOTFOUND, "no clips");
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    RUN(detector_fires_once_per_burst_at_its_onset);
    RUN(detector_suppression_and_options);
    RUN(load_manifest_splits_and_labels);
    return test_summary();
}
