/* audio/audio_internal.h - what the rest of the library uses from src/audio beyond the public
 * header: the recipe reader takes an already parsed cJSON object (a recipe's "features"). */
#ifndef AMUSE_AUDIO_INTERNAL_H
#define AMUSE_AUDIO_INTERNAL_H

#include "amuse/audio.h"

struct cJSON;

/* Fill *o from a parsed "features" object, starting from the defaults; where ("recipe.json:
 * features") starts every message. Same keys and errors as amuse_audio_features_parse. */
int am__audio_features_from_json(const struct cJSON *obj, const char *where,
                                 struct amuse_audio_features_options *o);

/* The features of n samples zero-padded at the end to `padded` samples (n <= padded), without
 * allocating: frames that run past the end go through the front end's own scratch window.
 * Errors as amuse_audio_frontend_compute. */
int am__audio_frontend_compute_padded(struct amuse_audio_frontend *fe, const float *samples,
                                      size_t n, size_t padded, float *out, size_t out_count);

#endif
