/* fuzz_multipart.c - libFuzzer harness for multipart/form-data bodies as /v1/images/classify
 * reads them (libmicrohttpd's post processor, the form fields, the image inside): the input's
 * first line is the boundary, the rest the body, sent with a valid key to a real amuse server in
 * process (serve_client.h). Findings: crashes, sanitizer reports, replies that never end. */
#include "serve_client.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_server_start();
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t blen = nl ? (size_t)(nl - s) : 0;
    if (blen > 200)
        blen = 200;
    const char *body = nl ? nl + 1 : s;
    size_t body_len = size - (size_t)(body - s);
    char boundary[201];
    size_t k = 0;
    for (size_t i = 0; i < blen; i++)
        if (s[i] != '\r' && s[i] != '\0')
            boundary[k++] = s[i]; /* a header value cannot hold CR, LF or NUL */
    boundary[k] = '\0';
    struct fuzz_text t = {0};
    char head[512];
    snprintf(head, sizeof head,
             "POST /v1/images/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
             "Authorization: Bearer %s\r\nContent-Length: %zu\r\n"
             "Content-Type: multipart/form-data; boundary=",
             fuzz_key, body_len);
    fuzz_puts(&t, head);
    fuzz_puts(&t, boundary);
    fuzz_puts(&t, "\r\n\r\n");
    fuzz_add(&t, body, body_len);
    fuzz_exchange(t.p, t.len);
    free(t.p);
    return 0;
}
