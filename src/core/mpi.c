/* mpi.c - the only file that talks to MPI (see core/mpi.h for the contract).
 *
 * Collectives are the non-blocking ones (MPI_Iallreduce, MPI_Iallgatherv, MPI_Ibcast,
 * MPI_Ibarrier) completed by a polling loop with a deadline, so a rank that stops answering turns
 * into an error naming the operation instead of a hang. MPI runs with MPI_THREAD_FUNNELED: only the
 * thread that called am__mpi_init makes MPI calls (OpenMP workers never do).
 * Not here: what is reduced or why (fit.c, word2vec_train.c, recsys/train.c), process launch. */
#define _POSIX_C_SOURCE 200809L
#include "core/mpi.h"

#include "core/internal.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int mpi_rank = 0, mpi_size = 1, mpi_local_size = 1;
static double mpi_timeout = 300;

int am__mpi_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int am__mpi_rank(void)
{
    return mpi_rank;
}

int am__mpi_size(void)
{
    return mpi_size;
}

int am__mpi_local_size(void)
{
    return mpi_local_size;
}

void am__mpi_set_timeout(double seconds)
{
    mpi_timeout = seconds;
}

#if defined(AMUSE_HAVE_MPI)
#include <mpi.h>

static int mpi_started = 0;

int am__mpi_compiled(void)
{
    return 1;
}

const char *am__mpi_library(void)
{
    static char name[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (!name[0]) {
        MPI_Get_library_version(name, &len);
        name[strcspn(name, ",\n")] = '\0'; /* "Open MPI v4.1.4" */
    }
    return name;
}

static int mpi_error(int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", code);
    return am__fail(AMUSE_EIO, "MPI %s failed on rank %d of %d: %s", what, mpi_rank, mpi_size,
                    text);
}

int am__mpi_init(int *argc, char ***argv)
{
    if (mpi_started || !am__mpi_launched())
        return AMUSE_OK;
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return am__fail(AMUSE_EIO, "MPI_Init failed (code %d)", rc);
    mpi_started = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &mpi_size);
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        MPI_Comm_size(local, &mpi_local_size);
        MPI_Comm_free(&local);
    }
    const char *t = getenv("AMUSE_MPI_TIMEOUT");
    if (t && *t) {
        char *end;
        double v = strtod(t, &end);
        if (*end == '\0')
            mpi_timeout = v;
    }
    return AMUSE_OK;
}

void am__mpi_finalize(void)
{
    if (mpi_started) {
        MPI_Finalize();
        mpi_started = 0;
    }
}

/* Complete a started collective, polling so that a deadline can end the wait. */
static int wait_request(MPI_Request *req, const char *what)
{
    double deadline = mpi_timeout > 0 ? am__now() + mpi_timeout : 0;
    for (unsigned polls = 1;; polls++) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_error(rc, what);
        if (done)
            return AMUSE_OK;
        if (polls % 256 == 0 && deadline > 0 && am__now() > deadline)
            return am__fail(AMUSE_EIO,
                            "MPI %s: rank %d of %d waited %g s for the other ranks; one of "
                            "them stopped (AMUSE_MPI_TIMEOUT sets the limit)",
                            what, mpi_rank, mpi_size, mpi_timeout);
        /* Spin briefly (a collective among ranks that arrive together completes in
         * microseconds), then sleep between polls: a rank that waits for a slower one must
         * not take the core that one needs on a shared or oversubscribed machine. */
        if (polls > 4096) {
            struct timespec pause = {0, 50000};
            nanosleep(&pause, NULL);
        } else if (polls % 256 == 0) {
            sched_yield();
        }
    }
}

#define CHUNK (1 << 28) /* elements per collective call: counts are ints */

int am__mpi_allreduce_sum_float(float *buf, int64_t n)
{
    if (!mpi_started || mpi_size == 1)
        return AMUSE_OK;
    for (int64_t at = 0; at < n; at += CHUNK) {
        int count = (int)(n - at < CHUNK ? n - at : CHUNK);
        MPI_Request req;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, buf + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                                &req);
        if (rc != MPI_SUCCESS)
            return mpi_error(rc, "allreduce");
        if ((rc = wait_request(&req, "allreduce")))
            return rc;
    }
    return AMUSE_OK;
}

int am__mpi_allreduce_sum_double(double *buf, int n)
{
    if (!mpi_started || mpi_size == 1)
        return AMUSE_OK;
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS)
        return mpi_error(rc, "allreduce");
    return wait_request(&req, "allreduce");
}

int am__mpi_allgather_rows(float *buf, int64_t rows, int64_t row_floats)
{
    if (!mpi_started || mpi_size == 1)
        return AMUSE_OK;
    if (rows < 0 || row_floats < 0 || (row_floats > 0 && rows > INT_MAX / row_floats))
        return am__fail(AMUSE_ETOOBIG, "MPI allgather: %lld rows of %lld floats is over %d values",
                        (long long)rows, (long long)row_floats, INT_MAX);
    int *counts = malloc(2 * (size_t)mpi_size * sizeof *counts);
    if (!counts)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int *displs = counts + mpi_size;
    for (int r = 0; r < mpi_size; r++) {
        int64_t lo = am__mpi_share(rows, r, mpi_size), hi = am__mpi_share(rows, r + 1, mpi_size);
        displs[r] = (int)(lo * row_floats);
        counts[r] = (int)((hi - lo) * row_floats);
    }
    MPI_Request req;
    int rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT,
                             MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS)
        rc = mpi_error(rc, "allgather");
    else
        rc = wait_request(&req, "allgather");
    free(counts);
    return rc;
}

int am__mpi_bcast(void *buf, size_t bytes, int root)
{
    if (!mpi_started || mpi_size == 1)
        return AMUSE_OK;
    for (size_t at = 0; at < bytes; at += CHUNK) {
        int count = (int)(bytes - at < CHUNK ? bytes - at : CHUNK);
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + at, count, MPI_BYTE, root, MPI_COMM_WORLD, &req);
        if (rc != MPI_SUCCESS)
            return mpi_error(rc, "bcast");
        if ((rc = wait_request(&req, "bcast")))
            return rc;
    }
    return AMUSE_OK;
}

int am__mpi_barrier(void)
{
    if (!mpi_started || mpi_size == 1)
        return AMUSE_OK;
    MPI_Request req;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS)
        return mpi_error(rc, "barrier");
    return wait_request(&req, "barrier");
}

_Noreturn void am__mpi_abort(int code)
{
    fflush(NULL);
    if (mpi_started && mpi_size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

#else /* ------------------------------------------------------------- built without MPI */

int am__mpi_compiled(void)
{
    return 0;
}

const char *am__mpi_library(void)
{
    return "none";
}

int am__mpi_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return AMUSE_OK;
}

void am__mpi_finalize(void)
{
}

int am__mpi_allreduce_sum_float(float *buf, int64_t n)
{
    (void)buf;
    (void)n;
    return AMUSE_OK;
}

int am__mpi_allreduce_sum_double(double *buf, int n)
{
    (void)buf;
    (void)n;
    return AMUSE_OK;
}

int am__mpi_allgather_rows(float *buf, int64_t rows, int64_t row_floats)
{
    (void)buf;
    (void)rows;
    (void)row_floats;
    return AMUSE_OK;
}

int am__mpi_bcast(void *buf, size_t bytes, int root)
{
    (void)buf;
    (void)bytes;
    (void)root;
    return AMUSE_OK;
}

int am__mpi_barrier(void)
{
    return AMUSE_OK;
}

_Noreturn void am__mpi_abort(int code)
{
    fflush(NULL);
    exit(code);
}
#endif
