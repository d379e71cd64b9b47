/* cmd_data.c - `amuse data samples`: write images of the Fashion-MNIST test set as PNG files, so
 * the README's examples (amuse predict, curl -F file=@...) have real pictures to send. With
 * --inverted it also writes each one with its grey levels inverted (a dark garment on a light
 * background, as a phone photo of clothes on a table looks). It only reads the installed dataset
 * (Debian's dataset-fashion-mnist); it does not download, resize or augment anything. */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "amuse/data.h"
#include "amuse/error.h"
#include "core/internal.h" /* am__write_file_atomic, am__mkdir_p */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* stb_image_write (Debian's libstb): the one encoder amuse needs, declared here rather than
 * through the header, which would define every stbi_write_* in this file. */
extern unsigned char *stbi_write_png_to_mem(const unsigned char *pixels, int stride_bytes, int x,
                                            int y, int n, int *out_len);

static const char *const fashion_labels[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                               "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                               "Bag",         "Ankle boot"};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amuse data samples [options]\n\n"
            "Write test-set images of Fashion-MNIST (dataset-fashion-mnist) as 28x28 grey PNG\n"
            "files named t10k-<index>.png, and print each file's true label.\n\noptions:\n"
            "  -o, --out DIR      where to write them (created if missing; default .)\n"
            "  -n, --count N      how many (default 10)\n"
            "      --first I      index of the first one (default 0)\n"
            "      --inverted     also write t10k-<index>-inverted.png: the same image with its\n"
            "                     grey levels inverted (dark garment on a light background)\n"
            "      --images PATH  the IDX images file (default " FASHION_DIR
            "/t10k-images-idx3-ubyte.gz)\n"
            "      --labels PATH  the IDX labels file (default " FASHION_DIR
            "/t10k-labels-idx1-ubyte.gz)\n"
            "  -h, --help         this help\n");
}

static int write_png(const char *path, const uint8_t *pixels, int h, int w)
{
    int len = 0;
    unsigned char *png = stbi_write_png_to_mem(pixels, w, w, h, 1, &len);
    if (!png)
        return cli_error("%s: cannot encode PNG (out of memory)", path);
    int rc = am__write_file_atomic(path, png, (size_t)len);
    free(png);
    return rc ? cli_fail(rc, "write") : 0;
}

static int samples(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"out", required_argument, 0, 'o'},    {"count", required_argument, 0, 'n'},
        {"first", required_argument, 0, 'f'},  {"inverted", no_argument, 0, 'v'},
        {"images", required_argument, 0, 'i'}, {"labels", required_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *out = ".", *images = FASHION_DIR "/t10k-images-idx3-ubyte.gz",
               *labels = FASHION_DIR "/t10k-labels-idx1-ubyte.gz";
    long long count = 10, first = 0;
    int inverted = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'n': if (cli_parse_int("--count", optarg, 1, 100000, &count)) return 2; break;
        case 'f': if (cli_parse_int("--first", optarg, 0, 10000000, &first)) return 2; break;
        case 'v': inverted = 1; break;
        case 'i': images = optarg; break;
        case 'l': labels = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        cli_error("data samples: unexpected argument '%s'", argv[optind]);
        usage(stderr);
        return 2;
    }
    struct amuse_idx im = {0}, lb = {0};
    int rc = amuse_idx_read(images, &im);
    if (rc) {
        cli_fail(rc, "data samples");
        if (rc == AMUSE_EIO || rc == AMUSE_ENOTFOUND)
            fprintf(stderr, "amuse: install the dataset: sudo apt-get install dataset-fashion-mnist\n");
        return 1;
    }
    int status = 1;
    if ((rc = amuse_idx_read(labels, &lb))) {
        cli_fail(rc, "data samples");
        goto out;
    }
    if (im.shape.ndim != 3 || lb.shape.ndim != 1 || im.shape.dim[0] != lb.shape.dim[0]) {
        cli_error("%s and %s: not an (n, h, w) image file and its (n) labels", images, labels);
        goto out;
    }
    int64_t n = im.shape.dim[0], h = im.shape.dim[1], w = im.shape.dim[2];
    if (first + count > n) {
        cli_error("data samples: --first %lld --count %lld is past the %lld images of %s", first,
                  count, (long long)n, images);
        goto out;
    }
    if ((rc = am__mkdir_p(out))) {
        cli_fail(rc, "data samples");
        goto out;
    }
    uint8_t *flip = malloc((size_t)(h * w));
    if (!flip) {
        cli_error("out of memory");
        goto out;
    }
    status = 0;
    for (int64_t i = first; i < first + count && !status; i++) {
        const uint8_t *px = im.data + i * h * w;
        char path[4096];
        snprintf(path, sizeof path, "%s/t10k-%lld.png", out, (long long)i);
        if ((status = write_png(path, px, (int)h, (int)w)))
            break;
        uint8_t y = lb.data[i];
        printf("%s\t%s\n", path, y < 10 ? fashion_labels[y] : "?");
        if (inverted) {
            for (int64_t k = 0; k < h * w; k++)
                flip[k] = (uint8_t)(255 - px[k]);
            snprintf(path, sizeof path, "%s/t10k-%lld-inverted.png", out, (long long)i);
            if ((status = write_png(path, flip, (int)h, (int)w)))
                break;
            printf("%s\t%s\n", path, y < 10 ? fashion_labels[y] : "?");
        }
    }
    free(flip);
out:
    amuse_idx_release(&im);
    amuse_idx_release(&lb);
    return status;
}

int cmd_data(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: amuse data <subcommand> [options]\n\n"
                   "subcommands:\n"
                   "  samples   write test-set images as PNG files (see 'amuse data samples "
                   "--help')\n");
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "samples") == 0)
        return samples(argc - 1, argv + 1);
    return cli_error("data: unknown subcommand '%s' (see 'amuse data --help')", argv[1]);
}
