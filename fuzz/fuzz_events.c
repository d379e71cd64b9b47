/* fuzz_events.c - libFuzzer harness for the user-data store's input side: each line of the
 * input is an event or an item as POST /v1/events, POST /v1/items and `amuse events import` take
 * them: a JSON object (parsed, turned into an event and an item, checked against the rules) or a
 * CSV line (split, its fields used as user, item, type, value, timestamp, text and checked). It
 * does not open a database: the rules and parsers are what input reaches first. */
#define _POSIX_C_SOURCE 200809L
#include "recsys/events_store.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(char *line)
{
    struct am__event e;
    if (line[0] == '{') {
        cJSON *o = cJSON_Parse(line);
        if (o && am__event_from_json(o, &e) == 0)
            (void)am__event_check(&e, 1700000000);
        char *tags = malloc(AM__EVENTS_MAX_META + 1);
        struct am__item it;
        if (o && tags)
            (void)am__item_from_json(o, &it, tags);
        free(tags);
        cJSON_Delete(o);
        return;
    }
    char *f[8];
    const char *why = NULL;
    int n = am__events_csv_split(line, f, 8, &why);
    if (n < 0) {
        if (!why)
            abort(); /* a refusal always says why */
        return;
    }
    memset(&e, 0, sizeof e);
    e.user = f[0];
    e.item = n > 1 ? f[1] : "";
    e.type = n > 2 ? am__event_type_parse(f[2]) : -1;
    if (n > 3 && *f[3]) {
        e.has_value = 1;
        e.value = strtod(f[3], NULL);
    }
    if (n > 4 && *f[4]) {
        e.has_time = 1;
        e.time = strtoll(f[4], NULL, 10);
    }
    if (n > 5 && *f[5]) {
        e.text = f[5];
        e.text_len = strlen(f[5]);
    }
    (void)am__event_check(&e, 1700000000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (char *p = text, *end = text + size; p <= end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl)
            *nl = '\0';
        one_line(p);
        if (!nl)
            break;
        p = nl + 1;
    }
    free(text);
    return 0;
}
