/* runtime.c - thread count for OpenMP and OpenBLAS together, and the BLAS kernel check.
 * Re-executing the process with a better OPENBLAS_CORETYPE is the CLI's decision, not ours. */
#define _POSIX_C_SOURCE 200809L
#include "amuse/runtime.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int thread_count;

void amuse_set_threads(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    thread_count = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int amuse_get_threads(void)
{
    return thread_count > 0 ? thread_count : omp_get_max_threads();
}

const char *amuse_blas_core(void)
{
    return openblas_get_corename();
}

static int has_flag(const char *flags, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = flags; (p = strstr(p, flag)) != NULL; p += n)
        if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

const char *amuse_blas_recommended_coretype(const char *current_core, const char *cpu_flags)
{
    if (cpu_flags == NULL && getenv("OPENBLAS_CORETYPE") != NULL)
        return NULL; /* the user (or the platform) chose; respect it */
    char detected[128] = "";
    if (cpu_flags == NULL) {
#if defined(__x86_64__) && defined(__GNUC__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
            strcat(detected, "avx512f avx512bw avx512vl avx512dq ");
        if (__builtin_cpu_supports("avx2"))
            strcat(detected, "avx2 ");
        if (__builtin_cpu_supports("fma"))
            strcat(detected, "fma ");
#endif
        cpu_flags = detected;
    }
    /* Kernel families OpenBLAS may fall back to on processors it does not recognise. */
    static const char *const generic[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                          "Sandybridge", "Barcelona", "Bulldozer", "Katmai",
                                          "Northwood", "Atom", NULL};
    int is_generic = 0;
    for (int i = 0; generic[i]; i++)
        if (current_core && strcmp(current_core, generic[i]) == 0)
            is_generic = 1;
    if (!is_generic)
        return NULL;
    if (has_flag(cpu_flags, "avx512f") && has_flag(cpu_flags, "avx512bw") &&
        has_flag(cpu_flags, "avx512vl") && has_flag(cpu_flags, "avx512dq"))
        return "SkylakeX";
    if (has_flag(cpu_flags, "avx2") && has_flag(cpu_flags, "fma"))
        return "Haswell";
    return NULL;
}

const char *amuse_version(void)
{
    return AMUSE_VERSION_STRING;
}
