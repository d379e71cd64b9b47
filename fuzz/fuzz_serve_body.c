/* fuzz_serve_body.c - libFuzzer harness for what the server parses out of request bodies: the
 * KServe V2 inference request (am__v2_parse: depth pre-check, cJSON, the envelope's fields; and
 * am__v2_parse_binary, the binary tensor extension's header and sizes), the
 * JSON-object bodies of the /v1 routes (am__json_parse_object) and the embeddings tokenizer
 * (am__openai_token), which must always advance and stay inside the text. Not here: multipart
 * bodies (libmicrohttpd's post processor needs a live connection: fuzz_multipart sends them to a
 * server in process). */
#include "serve/serve_internal.h"

#include "amuse/word2vec.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct am__v2_request req;
    (void)am__v2_parse((const char *)data, size, 32, &req);
    am__v2_request_release(&req);
    /* the binary tensor extension: the first byte says how much of the rest is the JSON header */
    if (size > 1) {
        size_t header = (size_t)data[0] * (size - 1) / 255;
        (void)am__v2_parse_binary((const char *)data + 1, size - 1, (long long)header, 32, &req);
        am__v2_request_release(&req);
    }

    cJSON *doc = NULL;
    if (am__json_parse_object((const char *)data, size, 32, &doc) == AMUSE_OK)
        cJSON_Delete(doc);

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char word[AMUSE_W2V_MAX_WORD_BYTES + 1];
    size_t pos = 0, len, limit = strlen(text);
    int too_long;
    while ((len = am__openai_token(text, &pos, word, &too_long)) > 0) {
        if (pos > limit || len > pos || (!too_long && strlen(word) != len))
            abort();
        for (size_t i = 0; word[i]; i++)
            if (!((word[i] >= 'a' && word[i] <= 'z') || (word[i] >= 'A' && word[i] <= 'Z')))
                abort(); /* tokens are ASCII letters, kept as written (one case rule) */
    }
    free(text);
    return 0;
}
