/* amuse/version.h - the library's version and its export macro.
 *
 * AMUSE_API marks a function that is part of the public ABI. libamuse is meant to be built with
 * -fvisibility=hidden, so a function without it is internal (am__ names), whatever its header.
 * AMUSE_VERSION_NUMBER compares numerically: 0x00MMmmpp (major, minor, patch).
 */
#ifndef AMUSE_VERSION_H
#define AMUSE_VERSION_H

#define AMUSE_VERSION_MAJOR 0
#define AMUSE_VERSION_MINOR 1
#define AMUSE_VERSION_PATCH 0
#define AMUSE_VERSION_NUMBER \
    ((AMUSE_VERSION_MAJOR << 16) | (AMUSE_VERSION_MINOR << 8) | AMUSE_VERSION_PATCH)
#define AMUSE_VERSION_STRING "0.1.0"

#if defined(_WIN32)
#define AMUSE_API
#elif defined(__GNUC__) || defined(__clang__)
#define AMUSE_API __attribute__((visibility("default")))
#else
#define AMUSE_API
#endif

#endif
