/* voice_data.c - voice-command data sets: a manifest CSV (or a directory of label folders) of
 * 1 s clips, decoded, cut or padded to the model's clip length and turned into feature frames;
 * and the features recipe of a voice model. It does not augment (data/make_voice.sh does, when
 * it synthesises the clips) and does not cache features between runs. */
#define _POSIX_C_SOURCE 200809L /* strdup, strtok_r */

#include "amuse/voice.h"

#include "audio/audio_internal.h"
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- the recipe */

int amuse_voice_model_features(const struct amuse_model *m,
                               struct amuse_audio_features_options *features, size_t *clip_samples)
{
    amuse_audio_features_defaults(features);
    *clip_samples = 0;
    const char *name = amuse_model_name(m);
    cJSON *doc = cJSON_Parse(amuse_model_config_json(m));
    if (!doc)
        return am__fail(AMUSE_EFORMAT, "model '%s': the config is not JSON", name);
    int rc = AMUSE_OK;
    char where[160];
    snprintf(where, sizeof where, "model '%s': features", name);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(doc, "features");
    if (!cJSON_IsObject(f)) {
        rc = am__fail(AMUSE_EINVAL,
                      "model '%s' is not a voice model: its config has no "
                      "\"features\" object",
                      name);
        goto out;
    }
    if ((rc = am__audio_features_from_json(f, where, features)) ||
        (rc = amuse_audio_features_check(features)))
        goto out;
    double clip_ms = 1000;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(doc, "input");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(input, "clip_ms");
    if (ms) {
        if (!cJSON_IsNumber(ms) || !(ms->valuedouble >= 100) ||
            !(ms->valuedouble <= AMUSE_VOICE_MAX_CLIP_MS)) {
            rc = am__fail(AMUSE_EINVAL,
                          "model '%s': input: key 'clip_ms': must be a number "
                          "from 100 to %d",
                          name, AMUSE_VOICE_MAX_CLIP_MS);
            goto out;
        }
        clip_ms = ms->valuedouble;
    }
    size_t samples = (size_t)llround(clip_ms * features->sample_rate / 1000.0);
    struct amuse_audio_frontend *fe = NULL;
    if ((rc = amuse_audio_frontend_new(features, &fe)))
        goto out;
    int64_t want =
        (int64_t)amuse_audio_frontend_frames(fe, samples) * amuse_audio_frontend_coefficients(fe);
    int64_t frames = (int64_t)amuse_audio_frontend_frames(fe, samples);
    int coefficients = amuse_audio_frontend_coefficients(fe);
    amuse_audio_frontend_free(fe);
    if (amuse_shape_size(amuse_model_input_shape(m)) != want) {
        char shape[96];
        rc = am__fail(AMUSE_ESHAPE,
                      "model '%s': input %s holds %lld values, but a %.0f ms clip gives %lld "
                      "frames x %d coefficients",
                      name, amuse_shape_format(amuse_model_input_shape(m), 1, shape, sizeof shape),
                      (long long)amuse_shape_size(amuse_model_input_shape(m)), clip_ms,
                      (long long)frames, coefficients);
        goto out;
    }
    *clip_samples = samples;
out:
    cJSON_Delete(doc);
    return rc;
}

int amuse_voice_clip_features(struct amuse_audio_frontend *fe, const float *samples, size_t n,
                              size_t clip_samples, float *out, size_t out_count)
{
    size_t need = amuse_audio_frontend_frames(fe, clip_samples) *
                  (size_t)amuse_audio_frontend_coefficients(fe);
    if (out_count < need)
        return am__fail(AMUSE_EINVAL, "clip features: %zu floats given, %zu needed", out_count,
                        need);
    for (size_t i = 0; i < n && i < clip_samples; i++)
        if (!isfinite(samples[i]))
            return am__fail(AMUSE_EINVAL, "clip features: sample %zu is not a finite number", i);
    if (n >= clip_samples)
        return amuse_audio_frontend_compute(fe, samples, clip_samples, out, out_count, NULL);
    return am__audio_frontend_compute_padded(fe, samples, n, clip_samples, out, out_count);
}

/* ---------------------------------------------------------------- the clip list */

struct clip {
    char *path;
    int label;
    int line; /* manifest line, 0 for a scanned directory */
};

struct clip_list {
    struct clip *v;
    size_t n, cap;
};

static void clips_release(struct clip_list *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].path);
    free(c->v);
    memset(c, 0, sizeof *c);
}

static int clips_add(struct clip_list *c, const char *dir, const char *rel, size_t rel_len,
                     int label, int line)
{
    if (c->n >= AMUSE_VOICE_MAX_CLIPS)
        return am__fail(AMUSE_ETOOBIG, "more than %d clips", AMUSE_VOICE_MAX_CLIPS);
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        struct clip *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return am__fail(AMUSE_ENOMEM, "out of memory");
        c->v = v;
        c->cap = cap;
    }
    size_t len = strlen(dir) + rel_len + 2;
    char *p = malloc(len);
    if (!p)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    if (rel_len && rel[0] == '/')
        snprintf(p, len, "%.*s", (int)rel_len, rel);
    else
        snprintf(p, len, "%s/%.*s", dir, (int)rel_len, rel);
    c->v[c->n++] = (struct clip){p, label, line};
    return AMUSE_OK;
}

static int find_label(const struct amuse_voice_data_options *o, const char *s, size_t len)
{
    for (int i = 0; i < o->n_labels; i++)
        if (strlen(o->labels[i]) == len && memcmp(o->labels[i], s, len) == 0)
            return i;
    return -1;
}

/* Split one CSV line (no quoting: make_voice.sh writes none) into at most max fields. */
static int split_fields(char *line, char **field, size_t *len, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *comma = strchr(p, ',');
        field[n] = p;
        len[n] = comma ? (size_t)(comma - p) : strlen(p);
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return n;
}

static int read_manifest(const char *path, const struct amuse_voice_data_options *o,
                         struct clip_list *clips)
{
    char *text = NULL;
    size_t len = 0;
    int rc = am__read_file(path, AMUSE_VOICE_MAX_MANIFEST, &text, &len);
    if (rc)
        return am__fail_prefix(rc, "%s", path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int col_path = -1, col_label = -1, col_split = -1, line_no = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r')
            line[--ll] = '\0';
        if (ll == 0)
            continue;
        char *field[32];
        size_t flen[32];
        int nf = split_fields(line, field, flen, 32);
        if (col_path < 0) { /* the header */
            for (int i = 0; i < nf; i++) {
                if (flen[i] == 4 && memcmp(field[i], "path", 4) == 0)
                    col_path = i;
                else if (flen[i] == 5 && memcmp(field[i], "label", 5) == 0)
                    col_label = i;
                else if (flen[i] == 5 && memcmp(field[i], "split", 5) == 0)
                    col_split = i;
            }
            if (col_path < 0 || col_label < 0) {
                rc = am__fail(AMUSE_EFORMAT,
                              "%s:%d: the header names no 'path' and 'label' "
                              "columns",
                              path, line_no);
                goto out;
            }
            if (o->split && col_split < 0) {
                rc = am__fail(AMUSE_EFORMAT, "%s:%d: the header names no 'split' column", path,
                              line_no);
                goto out;
            }
            continue;
        }
        int need = col_path > col_label ? col_path : col_label;
        if (o->split && col_split > need)
            need = col_split;
        if (nf <= need) {
            rc =
                am__fail(AMUSE_EFORMAT, "%s:%d: %d fields, the header has more", path, line_no, nf);
            goto out;
        }
        if (o->split && (strlen(o->split) != flen[col_split] ||
                         memcmp(o->split, field[col_split], flen[col_split]) != 0))
            continue;
        int label = find_label(o, field[col_label], flen[col_label]);
        if (label < 0) {
            rc = am__fail(AMUSE_EFORMAT, "%s:%d: label '%.*s' is not one of the model's labels",
                          path, line_no, (int)flen[col_label], field[col_label]);
            goto out;
        }
        if (flen[col_path] == 0) {
            rc = am__fail(AMUSE_EFORMAT, "%s:%d: empty path", path, line_no);
            goto out;
        }
        /* Checked before adding: a second split of a list starts with the first's clips. */
        if (o->limit > 0 && (int64_t)clips->n >= o->limit)
            break;
        if ((rc = clips_add(clips, dir, field[col_path], flen[col_path], label, line_no)))
            goto out;
    }
    if (col_path < 0)
        rc = am__fail(AMUSE_EFORMAT, "%s: empty manifest", path);
out:
    free(text);
    return rc;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* DIR/<label>/ *.wav for each label, in name order (deterministic). */
static int scan_directory(const char *path, const struct amuse_voice_data_options *o,
                          struct clip_list *clips)
{
    for (int k = 0; k < o->n_labels; k++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, o->labels[k]);
        DIR *dir = opendir(sub);
        if (!dir)
            continue;
        char **names = NULL;
        size_t n = 0, cap = 0;
        int rc = AMUSE_OK;
        struct dirent *e;
        while ((e = readdir(dir))) {
            size_t len = strlen(e->d_name);
            if (len < 5 || strcmp(e->d_name + len - 4, ".wav") != 0)
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                char **v = realloc(names, cap * sizeof *v);
                if (!v) {
                    rc = am__fail(AMUSE_ENOMEM, "out of memory");
                    break;
                }
                names = v;
            }
            if (!(names[n] = strdup(e->d_name))) {
                rc = am__fail(AMUSE_ENOMEM, "out of memory");
                break;
            }
            n++;
        }
        closedir(dir);
        if (rc == AMUSE_OK && n)
            qsort(names, n, sizeof *names, compare_names);
        for (size_t i = 0; i < n; i++) {
            if (rc == AMUSE_OK && !(o->limit > 0 && (int64_t)clips->n >= o->limit))
                rc = clips_add(clips, sub, names[i], strlen(names[i]), k, 0);
            free(names[i]);
        }
        free(names);
        if (rc)
            return rc;
    }
    return AMUSE_OK;
}

/* ---------------------------------------------------------------- loading */

int amuse_voice_load_dataset(struct amuse_dataset *d, const char *path,
                             const struct amuse_voice_data_options *o)
{
    memset(d, 0, sizeof *d);
    if (!o || o->n_labels < 1 || !o->labels)
        return am__fail(AMUSE_EINVAL, "voice data: no labels given");
    struct clip_list clips = {0};
    struct amuse_audio_frontend *fe = NULL;
    int rc;
    struct stat st;
    if (stat(path, &st) != 0) {
        rc = am__fail(AMUSE_ENOTFOUND, "%s: no such file or directory", path);
        goto out;
    }
    char manifest[4096];
    snprintf(manifest, sizeof manifest, "%s", path);
    if (S_ISDIR(st.st_mode)) {
        snprintf(manifest, sizeof manifest, "%s/manifest.csv", path);
        if (stat(manifest, &st) != 0) {
            if ((rc = scan_directory(path, o, &clips)))
                goto out;
            manifest[0] = '\0';
        }
    }
    /* Each split of a comma-separated list in turn: "train,validation" puts the validation
     * voices last, where fit's validation_split takes its rows from. */
    const char *split = o->split;
    while (manifest[0]) {
        struct amuse_voice_data_options one = *o;
        char name[64] = "";
        if (split) {
            size_t len = strcspn(split, ",");
            snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), split);
            one.split = name;
            split += len;
        }
        if ((rc = read_manifest(manifest, &one, &clips)))
            goto out;
        if (!split || *split == '\0')
            break;
        split++;
    }
    if (clips.n == 0) {
        rc = am__fail(AMUSE_ENOTFOUND, "%s: no clips%s%s", path, o->split ? " in split " : "",
                      o->split ? o->split : "");
        goto out;
    }
    if ((rc = amuse_audio_frontend_new(&o->features, &fe)))
        goto out;
    size_t clip = o->clip_samples ? o->clip_samples : (size_t)o->features.sample_rate;
    int64_t dims[2] = {(int64_t)amuse_audio_frontend_frames(fe, clip),
                       amuse_audio_frontend_coefficients(fe)};
    if (dims[0] < 1) {
        rc = am__fail(AMUSE_EINVAL,
                      "voice data: a clip of %zu samples is shorter than one "
                      "window",
                      clip);
        goto out;
    }
    struct amuse_shape shape, none;
    amuse_shape_make(&shape, 2, dims);
    amuse_shape_make(&none, 0, NULL);
    if ((rc = amuse_array_alloc(&d->input[0], NULL, AMUSE_FLOAT32, &shape, (int64_t)clips.n)) ||
        (rc = amuse_array_alloc(&d->target, NULL, AMUSE_INT32, &none, (int64_t)clips.n)))
        goto out;
    d->n = (int64_t)clips.n;
    d->n_inputs = 1;
    d->n_classes = o->n_labels;
    int64_t per = dims[0] * dims[1];
    struct amuse_audio_options ao = {.target_rate = o->features.sample_rate};
    for (size_t i = 0; i < clips.n; i++) {
        struct amuse_audio a;
        if ((rc = amuse_audio_load(clips.v[i].path, &ao, &a))) {
            if (clips.v[i].line)
                am__fail_prefix(rc, "manifest line %d", clips.v[i].line);
            goto out;
        }
        rc = amuse_voice_clip_features(fe, a.samples, a.count, clip,
                                       d->input[0].f32 + (int64_t)i * per, (size_t)per);
        amuse_audio_release(&a);
        if (rc) {
            am__fail_prefix(rc, "%s", clips.v[i].path);
            goto out;
        }
        d->target.i32[i] = clips.v[i].label;
    }
out:
    amuse_audio_frontend_free(fe);
    clips_release(&clips);
    if (rc)
        amuse_dataset_release(d);
    return rc;
}
