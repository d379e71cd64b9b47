/* amuse/error.h - status codes and error messages.
 *
 * Every library function that can fail returns an int: AMUSE_OK (0) on success, a negative
 * AMUSE_E* code on failure. The code says what kind of failure it was; amuse_last_error() says
 * exactly what and where (file, field, byte offset). The library never exits, and prints only
 * one diagnostic a user asks for: with AMUSE_PROFILE=1 in the environment when a model is loaded,
 * amuse_model_free writes that model's seconds per layer to stderr.
 *
 * Contracts that hold for every function unless its header says otherwise: a function that
 * returns an object through `T **out` sets *out to NULL when it fails, so the caller can always
 * free it; strings returned as `const char *` belong to the object they came from and stay
 * valid until it is freed or the same function is called again on it; free functions accept
 * NULL.
 */
#ifndef AMUSE_ERROR_H
#define AMUSE_ERROR_H

#include "amuse/version.h" /* AMUSE_API */

#ifdef __cplusplus
extern "C" {
#endif

enum amuse_status {
    AMUSE_OK = 0,
    AMUSE_ENOMEM = -1,      /* allocation failed */
    AMUSE_EINVAL = -2,      /* invalid argument or option */
    AMUSE_EIO = -3,         /* the operating system refused a read, write, open or rename */
    AMUSE_EFORMAT = -4,     /* input bytes are malformed: corrupt, truncated, wrong type */
    AMUSE_ESHAPE = -5,      /* tensor shapes do not agree */
    AMUSE_ETOOBIG = -6,     /* input exceeds a hard cap (dimensions, sizes, counts) */
    AMUSE_ENOTFOUND = -7,   /* a named thing (file, layer, tensor, label) does not exist */
    AMUSE_EUNSUPPORTED = -8, /* well-formed but not supported (unknown layer, dtype) */
    AMUSE_EBUSY = -9         /* a shared resource is busy for now (a database's write lock held
                                past the busy timeout): the same call may succeed later */
};

/* A short, static description of a status code ("malformed input", ...). Never NULL. */
AMUSE_API const char *amuse_strerror(int status);

/* The detailed message of the last failure on this thread, e.g.
 * "model.safetensors: tensor 'dense/kernel': data_offsets [0, 40) overlap [32, 64)".
 * Valid until the next failing call on the same thread. Empty string if none. */
AMUSE_API const char *amuse_last_error(void);

/* Forget the last error message of this thread. */
AMUSE_API void amuse_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
