/* amuse/rng.h - a small, seedable, deterministic random number generator.
 *
 * xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64. Same seed, same stream, on every
 * machine. Not for cryptography: keys and tokens use libsodium.
 */
#ifndef AMUSE_RNG_H
#define AMUSE_RNG_H

#include "amuse/version.h" /* AMUSE_API */

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct amuse_rng {
    uint64_t s[4];
};

AMUSE_API void amuse_rng_seed(struct amuse_rng *r, uint64_t seed);
AMUSE_API uint64_t amuse_rng_next(struct amuse_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
AMUSE_API float amuse_rng_uniform(struct amuse_rng *r);
/* Uniform integer in [0, n), without modulo bias. n must be > 0. */
AMUSE_API uint64_t amuse_rng_below(struct amuse_rng *r, uint64_t n);
/* Standard normal (Box-Muller). */
AMUSE_API float amuse_rng_normal(struct amuse_rng *r);
/* Fisher-Yates shuffle of an index array. */
AMUSE_API void amuse_rng_shuffle(struct amuse_rng *r, int64_t *idx, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
