/* amuse/runtime.h - process-wide settings: threads and the BLAS backend.
 *
 * amuse runs its own loops with OpenMP and its matrix products with OpenBLAS. One thread count
 * governs both. OpenBLAS picks its kernels when the process loads it, from the environment
 * variable OPENBLAS_CORETYPE or from its own CPU detection; older OpenBLAS releases do not know
 * recent processors and fall back to slow generic (SSE3 "Prescott") kernels. The amuse command
 * fixes this by re-executing itself once with the right OPENBLAS_CORETYPE (see
 * amuse_blas_recommended_coretype); programs that link libamuse can do the same or set the variable
 * themselves. A value already present in the environment is always respected.
 */
#ifndef AMUSE_RUNTIME_H
#define AMUSE_RUNTIME_H

#include "amuse/version.h" /* AMUSE_API */

#ifdef __cplusplus
extern "C" {
#endif

/* Use n threads for OpenMP loops and OpenBLAS (n <= 0: one per core). */
AMUSE_API void amuse_set_threads(int n);
AMUSE_API int amuse_get_threads(void);

/* The kernel family OpenBLAS chose at load time, e.g. "Zen", "SkylakeX", "Prescott". */
AMUSE_API const char *amuse_blas_core(void);

/* The OPENBLAS_CORETYPE value that would give this CPU faster kernels than the ones OpenBLAS
 * chose, or NULL if the current choice is fine or OPENBLAS_CORETYPE is already set.
 * cpu_flags: pass NULL to detect the running CPU; tests pass a feature string such as
 * "avx512f avx512bw avx512vl avx512dq avx2 fma". */
AMUSE_API const char *amuse_blas_recommended_coretype(const char *current_core, const char *cpu_flags);

/* Library version string, "0.1.0". */
AMUSE_API const char *amuse_version(void);

#ifdef __cplusplus
}
#endif
#endif
