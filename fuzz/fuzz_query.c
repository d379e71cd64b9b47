/* fuzz_query.c - libFuzzer harness for query strings: the input is the text after '?', sent with
 * a valid key to the routes that read arguments (GET /v1/words/similar, POST
 * /v1/images/classify with a raw image body, GET /v2/models/{model}) on a real amuse server in
 * process (serve_client.h): libmicrohttpd's argument parsing and unescaping (ours: "%00" stays
 * as sent), parse_count, model lookup, and the error messages that quote the arguments.
 * Findings: crashes, sanitizer reports, replies that never end. */
#include "serve_client.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One PNG pixel, grey: a valid image body for the classify route. */
static const unsigned char png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00,
    0x00, 0x3a, 0x7e, 0x9b, 0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0x68, 0x00, 0x00, 0x00, 0x82, 0x00, 0x81, 0x4c, 0x17, 0xd7, 0xdf, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_server_start();
    static const char *const routes[] = {"GET /v1/words/similar?", "POST /v1/images/classify?",
                                         "GET /v2/models/words-en?"};
    for (int r = 0; r < 3; r++) {
        struct fuzz_text t = {0};
        fuzz_puts(&t, routes[r]);
        fuzz_add(&t, data, size);
        char head[256];
        snprintf(head, sizeof head,
                 " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer "
                 "%s\r\n",
                 fuzz_key);
        fuzz_puts(&t, head);
        if (r == 1) {
            snprintf(head, sizeof head, "Content-Type: image/png\r\nContent-Length: %zu\r\n\r\n",
                     sizeof png);
            fuzz_puts(&t, head);
            fuzz_add(&t, png, sizeof png);
        } else {
            fuzz_puts(&t, "\r\n");
        }
        fuzz_exchange(t.p, t.len);
        free(t.p);
    }
    return 0;
}
