/* fuzz_completions.c - libFuzzer harness for the body parser of the generation routes
 * (am__gen_parse: POST /v1/completions, /v1/chat/completions and KServe's generate): the first
 * byte picks the format (low two bits, 3 reads as completions), whether the model is an
 * encoder-decoder (bit 2) and its max_tokens cap (the rest); the other bytes are the body, read
 * as the server reads it (am__json_parse_object with its depth limit). A body the parser takes
 * must give a prompt that is non-empty, within its byte cap and valid UTF-8, and fields inside
 * their documented ranges; one it refuses must leave a 400 (or 500) with a JSON error reply.
 * Not here: the route's model lookup and the generation itself (cli_generate_serve runs those on
 * a real server). */
#include "serve/serve_internal.h"
#include "text/utf8.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int format = data[0] & 3, seq2seq = (data[0] >> 2) & 1, cap = 1 + (data[0] >> 3) * 64;
    if (format == 3)
        format = AM__GEN_COMPLETION;
    static const char *const urls[] = {"/v1/completions", "/v1/chat/completions",
                                       "/v2/models/m/generate"};
    cJSON *doc = NULL;
    if (am__json_parse_object((const char *)data + 1, size - 1, 32, &doc) != AMUSE_OK)
        return 0;
    struct am__request r;
    memset(&r, 0, sizeof r);
    r.url = urls[format];
    struct am__gen_params p;
    int slots = 8;
    if (am__gen_parse(&r, doc, (enum am__gen_format)format, cap, slots, seq2seq, &p) == 0) {
        size_t bad;
        if (!p.prompt || p.prompt_len == 0 ||
            p.prompt_len > (size_t)AMUSE_GENERATE_MAX_PROMPT * 4 ||
            strlen(p.prompt) > p.prompt_len || !am__utf8_valid(p.prompt, p.prompt_len, &bad))
            abort();
        if (p.max_tokens < 1 || p.max_tokens > cap || p.n < 1 || p.n > slots ||
            p.n > AM__GEN_MAX_N || (format == AM__GEN_KSERVE && p.n != 1))
            abort();
        if (!(p.temperature >= 0 && p.temperature <= 2) || !(p.top_p > 0 && p.top_p <= 1))
            abort();
        if (p.n_stop < 0 || p.n_stop > AMUSE_GENERATE_MAX_STOPS)
            abort();
        for (int i = 0; i < p.n_stop; i++) {
            size_t len = strlen(p.stops[i]);
            if (len < 1 || len > AMUSE_GENERATE_MAX_STOP_BYTES ||
                !am__utf8_valid(p.stops[i], len, &bad))
                abort();
        }
        if (r.status != 0 || r.out.len != 0)
            abort(); /* no error reply for a body that was taken */
    } else {
        if ((r.status != 400 && r.status != 500) || r.out.len == 0 || !r.out.data)
            abort();
        cJSON *reply = cJSON_ParseWithLength(r.out.data, r.out.len);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
        if (!e || (format == AM__GEN_KSERVE ? !cJSON_IsString(e) : !cJSON_IsObject(e)))
            abort(); /* OpenAI's {"error": {...}}, KServe's {"error": "..."} */
        cJSON_Delete(reply);
        if (p.prompt)
            abort(); /* a refused body keeps nothing */
    }
    am__gen_params_release(&p);
    am__buf_release(&r.out);
    cJSON_Delete(doc);
    return 0;
}
