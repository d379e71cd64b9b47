/* recsys/recsys_internal.h - what the recommender's source files share (am__ names, not
 * installed): the line splitter both file readers use, top-k selection, and small dense math. */
#ifndef AMUSE_RECSYS_INTERNAL_H
#define AMUSE_RECSYS_INTERNAL_H

#include "amuse/recsys.h"

#include <stddef.h>
#include <stdint.h>

#define AM__REC_MAX_FILE ((size_t)8 << 30) /* bytes in an events or items file */

/* Split line [s, end) at sep into at most max fields (pointers into the line, NUL-terminated in
 * place; a trailing '\r' is dropped). Returns the number of fields. */
int am__rec_split_fields(char *s, char *end, char sep, char **fields, int max);

/* Indices of the k largest scores (ties: lower index first), best first; scores of -INFINITY
 * are never chosen. Returns how many were written. */
int am__rec_top_k(const float *scores, int64_t n, int k, int32_t *out);

/* Solve A x = b for a symmetric positive definite f x f matrix A (double, overwritten by its
 * Cholesky factor). Returns 0, or -1 if A is not positive definite. */
int am__rec_cholesky_solve(double *A, double *b, int f);

/* Y^T Y (+ reg on the diagonal) of a rows x f matrix, into f x f. */
void am__rec_gram(const float *Y, int64_t rows, int f, double reg, float *out);

/* One row's ALS solve against B with gram = B^T B + reg I (f x f): conjugate gradient from x
 * (cg_steps) or, with cg_steps <= 0, the direct dense solve. idx/val: the row's entries. */
void am__rec_als_row(float *x, const float *B, const float *gram, int f, const int32_t *idx,
                     const float *val, int64_t n, double alpha, int cg_steps, float *scratch);

/* Compute m->item_gram from the item factors (after training or loading). */
int am__rec_model_prepare(struct amuse_rec_model *m);

/* The inverse-propensity weight of an item (1 when the model's ipw is 0). */
float am__rec_ipw_weight(const struct amuse_rec_model *m, int64_t item);

void am__rec_items_free(struct amuse_rec_items *it, int64_t n);

#endif
