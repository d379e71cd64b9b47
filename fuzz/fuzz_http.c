/* fuzz_http.c - libFuzzer harness for the whole HTTP request path, in process: the input is the
 * raw bytes of a request (method, path, query, headers, body), sent to a real amuse server on
 * 127.0.0.1 (serve_client.h) and answered by libmicrohttpd, the header checks, the router, the
 * handlers and the models. Every "KEY" in the input becomes the server's admin key, so the corpus
 * reaches past the 401. Findings: crashes and sanitizer reports in the server, and replies that
 * never end. Not here: TLS (the same code behind GnuTLS). */
#include "serve_client.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_server_start();
    struct fuzz_text t = {0};
    const char *s = (const char *)data;
    size_t i = 0;
    while (i < size) {
        if (i + 3 <= size && memcmp(s + i, "KEY", 3) == 0) {
            fuzz_puts(&t, fuzz_key);
            i += 3;
        } else {
            fuzz_add(&t, s + i, 1);
            i++;
        }
    }
    if (t.len)
        fuzz_exchange(t.p, t.len);
    free(t.p);
    return 0;
}
