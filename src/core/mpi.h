/* core/mpi.h - the one door to MPI (internal): who am I, how many of us, and the few collectives
 * data-parallel training, word2vec and ALS use. src/core/mpi.c is the only file that includes
 * <mpi.h>; without MPI (AMUSE_MPI=OFF, or not found) the same functions describe a job of one rank
 * and every collective is the identity, so callers compile and behave the same either way.
 *
 * A job is distributed only when the amuse command calls am__mpi_init under mpirun (or srun);
 * the library never starts MPI by itself, so a program linking libamuse stays one process.
 * Collectives return 0 or a negative AMUSE_E* status with a message naming the operation and the
 * rank; they never exit. They give up after the timeout (am__mpi_set_timeout) instead of waiting
 * for ever on a rank that stopped answering. */
#ifndef AMUSE_CORE_MPI_H
#define AMUSE_CORE_MPI_H

#include <stddef.h>
#include <stdint.h>

/* 1 when this build has MPI compiled in, else 0. am__mpi_library: "Open MPI v4.1.4, ..." or
 * "none". */
int am__mpi_compiled(void);
const char *am__mpi_library(void);

/* 1 when the environment says an MPI launcher started this process (OMPI_COMM_WORLD_SIZE,
 * PMIX_RANK, PMI_RANK). */
int am__mpi_launched(void);

/* Start MPI if launched by mpirun and it is compiled in, else nothing. Sets MPI's error handler to
 * return errors, so a failed collective reaches the caller. Call once, before any thread starts. */
int am__mpi_init(int *argc, char ***argv);
/* Leave MPI (after every rank's last collective). Safe to call when init did nothing. */
void am__mpi_finalize(void);

/* Rank and job size (0 and 1 when not distributed); ranks on this machine. */
int am__mpi_rank(void);
int am__mpi_size(void);
int am__mpi_local_size(void);

/* Seconds a collective may wait for the other ranks before it fails (default 300; <= 0: for
 * ever). AMUSE_MPI_TIMEOUT in the environment sets it at init. */
void am__mpi_set_timeout(double seconds);

/* In place, over every rank: buf[i] = sum of buf[i]. */
int am__mpi_allreduce_sum_float(float *buf, int64_t n);
int am__mpi_allreduce_sum_double(double *buf, int n);
/* Rows [0, rows) of row_floats each, where rank r owns rows [rows*r/size, rows*(r+1)/size): every
 * rank's part is copied to every other rank, in place. */
int am__mpi_allgather_rows(float *buf, int64_t rows, int64_t row_floats);
/* Root's bytes to every rank. */
int am__mpi_bcast(void *buf, size_t bytes, int root);
int am__mpi_barrier(void);

/* The first row of rank r's share when `rows` are split over the job (rank == size: rows). */
static inline int64_t am__mpi_share(int64_t rows, int rank, int size)
{
    return rows * rank / size;
}

/* For the command only, after it printed why: end the whole job (every rank) with status code, so
 * the other ranks do not wait for this one. Without MPI, or when not distributed, it just exits.
 * Never returns. */
_Noreturn void am__mpi_abort(int code);

#endif
