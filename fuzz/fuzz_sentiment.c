/* fuzz_sentiment.c - libFuzzer harness for the review-text tokenizer (HTML entities, emoticons,
 * negation scope, UTF-8 validation). On success every token must be non-empty valid UTF-8 of at
 * most AMUSE_SENTIMENT_MAX_TOKEN_BYTES bytes plus the "not_" prefix; on failure the tokens must
 * be empty. It does not fuzz the model files (the safetensors and model_config harnesses cover
 * their parsers). */
#include "amuse/sentiment.h"
#include "text/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct amuse_sentiment_tokens t;
    int rc = amuse_sentiment_tokenize((const char *)data, size, &t);
    if (rc != AMUSE_OK) {
        if (t.n != 0 || t.items != NULL)
            abort();
        return 0;
    }
    for (int i = 0; i < t.n; i++) {
        size_t len = strlen(t.items[i]), bad;
        if (len == 0 || len > AMUSE_SENTIMENT_MAX_TOKEN_BYTES + 4 ||
            !am__utf8_valid(t.items[i], len, &bad))
            abort();
    }
    amuse_sentiment_tokens_release(&t);
    return 0;
}
