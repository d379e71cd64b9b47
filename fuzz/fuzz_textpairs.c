/* fuzz_textpairs.c - libFuzzer harness for the text datasets (amuse/textdata.h): the input is a
 * corpus; its vocabulary is built, then the pair reader (source<TAB>target lines) and the
 * language-model windows run on it. On success every id is inside the vocabulary, every decoder
 * input starts with <s> and every weight is 0 or 1; on failure the dataset is empty. It does not
 * fuzz file reading (am__read_file) or recipes (fuzz_recipe covers the config parser). */
#include "amuse/charvocab.h"
#include "amuse/textdata.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ids(const struct amuse_array *a, int64_t n, int V)
{
    int64_t count = n * amuse_array_sample_size(a);
    for (int64_t i = 0; a->i32 && i < count; i++)
        if (a->i32[i] < 0 || a->i32[i] >= V)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct amuse_charvocab *v = NULL;
    if (amuse_charvocab_build(&v, &text, &size, 1, 1, 0, "fuzz") != AMUSE_OK)
        return 0;
    int V = amuse_charvocab_size(v);
    struct amuse_text_layout ids = {{0, 0}, 1};
    struct amuse_dataset d;
    int smax, tmax;
    if (amuse_text_pairs_lengths(text, size, "fuzz", &smax, &tmax) == AMUSE_OK &&
        amuse_text_pairs_dataset(&d, v, text, size, "fuzz", 8, 9, 0, &ids, NULL) == AMUSE_OK) {
        check_ids(&d.input[0], d.n, V);
        check_ids(&d.input[1], d.n, V);
        check_ids(&d.target, d.n, V);
        for (int64_t i = 0; i < d.n; i++) {
            if (d.input[1].i32[i * 9] != AMUSE_CHAR_BOS)
                abort();
            for (int t = 0; t < 9; t++)
                if (d.weight[i * 9 + t] != 0.0f && d.weight[i * 9 + t] != 1.0f)
                    abort();
        }
        amuse_dataset_release(&d);
    }
    if (amuse_text_lm_dataset(&d, v, text, size, "fuzz", 4, 3, &ids) == AMUSE_OK) {
        check_ids(&d.input[0], d.n, V);
        check_ids(&d.target, d.n, V);
        amuse_dataset_release(&d);
    } else if (d.n != 0 || d.input[0].i32 || d.target.i32) {
        abort();
    }
    amuse_charvocab_free(v);
    return 0;
}
