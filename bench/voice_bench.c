/* voice_bench.c - the per-clip time of bench/voice.sh: features plus inference of one 1 s clip
 * at a time (batch 1, as an app classifies what the microphone just heard), through the public
 * API only. The model is loaded and every clip decoded BEFORE the clock starts: process start,
 * model load and WAV decoding are not in the figure. Each clip is classified `repeat` times;
 * the figure is CPU time of this thread over all of them (CLOCK_THREAD_CPUTIME_ID), divided by
 * clips x repeat, and the median wall time of one clip. Also prints accuracy (argmax against
 * the manifest label) so a fast wrong model cannot pass unnoticed. Prints one JSON object. Not
 * installed; voice.sh builds it against build/libamuse.so. It does not stream or detect.
 *
 *   voice_bench MODEL_DIR MANIFEST.csv REPEAT
 */
#include <amuse/audio.h>
#include <amuse/model.h>
#include <amuse/runtime.h>
#include <amuse/voice.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CLIPS 20000

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "voice_bench: %s: %s\n", what, amuse_last_error());
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: voice_bench MODEL_DIR MANIFEST.csv REPEAT\n");
        return 2;
    }
    int repeat = atoi(argv[3]);
    if (repeat < 1)
        repeat = 1;
    amuse_set_threads(1);
    struct amuse_model *m = NULL;
    if (amuse_model_load(&m, argv[1]))
        die(argv[1]);
    struct amuse_audio_features_options fo;
    size_t clip = 0;
    if (amuse_voice_model_features(m, &fo, &clip))
        die("features");
    struct amuse_audio_frontend *fe = NULL;
    if (amuse_audio_frontend_new(&fo, &fe))
        die("front end");
    size_t nfeat =
        amuse_audio_frontend_frames(fe, clip) * (size_t)amuse_audio_frontend_coefficients(fe);
    int n_labels = 0;
    while (amuse_model_label(m, n_labels))
        n_labels++;
    if (n_labels < 2)
        die("the model has no labels");
    float *feat = malloc(nfeat * sizeof *feat), *prob = malloc((size_t)n_labels * sizeof *prob);

    /* Decode every clip first. */
    FILE *f = fopen(argv[2], "r");
    if (!f || !feat || !prob) {
        perror(argv[2]);
        return 1;
    }
    static struct amuse_audio audio[MAX_CLIPS];
    static int label[MAX_CLIPS];
    int n = 0;
    char line[4096];
    struct amuse_audio_options ao = {0};
    if (!fgets(line, sizeof line, f)) /* header: path,label,... */
        return fprintf(stderr, "voice_bench: %s is empty\n", argv[2]), 1;
    while (n < MAX_CLIPS && fgets(line, sizeof line, f)) {
        char *path = strtok(line, ",\n"), *lab = strtok(NULL, ",\n");
        if (!path || !lab)
            continue;
        label[n] = -1;
        for (int k = 0; k < n_labels; k++)
            if (strcmp(amuse_model_label(m, k), lab) == 0)
                label[n] = k;
        if (amuse_audio_load(path, &ao, &audio[n]))
            die(path);
        n++;
    }
    fclose(f);
    if (n == 0)
        return fprintf(stderr, "voice_bench: no clips in %s\n", argv[2]), 1;

    double *wall = malloc((size_t)n * (size_t)repeat * sizeof *wall);
    if (!wall)
        return 1;
    int correct = 0;
    double cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (int r = 0; r < repeat; r++)
        for (int i = 0; i < n; i++) {
            double t0 = clock_s(CLOCK_MONOTONIC);
            if (amuse_voice_clip_features(fe, audio[i].samples, audio[i].count, clip, feat,
                                          nfeat) ||
                amuse_model_predict(m, feat, 1, 1, prob))
                die("classify");
            wall[(size_t)r * (size_t)n + (size_t)i] = clock_s(CLOCK_MONOTONIC) - t0;
            int best = 0;
            for (int k = 1; k < n_labels; k++)
                if (prob[k] > prob[best])
                    best = k;
            correct += r == 0 && best == label[i];
        }
    double cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    qsort(wall, (size_t)n * (size_t)repeat, sizeof *wall, cmp_double);
    printf("{\"clips\": %d, \"repeat\": %d, \"accuracy\": %.6f, \"cpu_ms_per_clip\": %.4f, "
           "\"median_wall_ms_per_clip\": %.4f, \"params\": %lld}\n",
           n, repeat, (double)correct / n, 1000 * cpu / ((double)n * repeat),
           1000 * wall[(size_t)n * (size_t)repeat / 2], (long long)amuse_model_param_count(m));
    for (int i = 0; i < n; i++)
        amuse_audio_release(&audio[i]);
    free(wall);
    free(feat);
    free(prob);
    amuse_audio_frontend_free(fe);
    amuse_model_free(m);
    return 0;
}
