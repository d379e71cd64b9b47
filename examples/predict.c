/* predict.c - the smallest useful libamuse program: load a trained image model and label one
 * image file. Build against an installed amuse:
 *
 *     cc predict.c $(pkg-config --cflags --libs amuse) -o predict
 *     ./predict out/fashion-cnn shirt.png
 */
#include <amuse/image.h>
#include <amuse/model.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s <model-dir> <image>\n", argv[0]);
        return 2;
    }
    struct amuse_model *m;
    if (amuse_model_load(&m, argv[1]) != AMUSE_OK) {
        fprintf(stderr, "%s\n", amuse_last_error());
        return 1;
    }
    const struct amuse_shape *in = amuse_model_input_shape(m);
    int64_t classes = amuse_shape_size(amuse_model_output_shape(m));
    struct amuse_image_options opt = {(int)in->dim[0], (int)in->dim[1], (int)in->dim[2], 0};
    float *x = malloc(sizeof(float) * (size_t)amuse_shape_size(in));
    float *p = malloc(sizeof(float) * (size_t)classes);
    int status = 1;
    if (!x || !p)
        goto out;
    if (amuse_image_load(argv[2], &opt, x) != AMUSE_OK ||
        amuse_model_predict(m, x, 1, 1, p) != AMUSE_OK) {
        fprintf(stderr, "%s\n", amuse_last_error());
        goto out;
    }
    int best = 0;
    for (int i = 1; i < classes; i++)
        if (p[i] > p[best])
            best = i;
    const char *label = amuse_model_label(m, best);
    printf("%s %.4f\n", label ? label : "?", p[best]);
    status = 0;
out:
    free(x);
    free(p);
    amuse_model_free(m);
    return status;
}
