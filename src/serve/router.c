/* router.c - the routing table: method, path pattern, the scope a key needs, the handler. Every
 * route needs a key unless its scope is 0 (the health routes and the playground's files).
 * docs/openapi.yaml describes each pattern, and a test checks that none is missing (amuse serve
 * --routes prints this table). Query strings never take part in matching (libmicrohttpd hands
 * them to handlers as arguments). A {name} segment captures one segment (am__request_param(r,
 * "name"); {model} and {version} also land in r->param_model and r->param_version). A last
 * segment {path} matches the rest of the path, slashes included (static files). A route whose
 * pattern captures {user} carries a person's id: the access log writes its pattern, not its path
 * (http.c). */
#include "serve/serve_internal.h"
#include "serve/test_control.h" /* amuse_server_route */

#include <string.h>

const struct am__route am__routes[] = {
    {"GET", "/v2/health/live", 0, am__handle_live},
    {"GET", "/v2/health/ready", 0, am__handle_ready},
    {"GET", "/", 0, am__handle_static},           /* the playground page (static.c) */
    {"GET", "/web/{path}", 0, am__handle_static}, /* ... and its files */
    {"GET", "/v2", AMUSE_SCOPE_INFER, am__handle_server_metadata},
    {"GET", "/v2/models/{model}", AMUSE_SCOPE_INFER, am__handle_model_metadata},
    {"GET", "/v2/models/{model}/versions/{version}", AMUSE_SCOPE_INFER, am__handle_model_metadata},
    {"GET", "/v2/models/{model}/ready", AMUSE_SCOPE_INFER, am__handle_model_ready},
    {"GET", "/v2/models/{model}/versions/{version}/ready", AMUSE_SCOPE_INFER,
     am__handle_model_ready},
    {"POST", "/v2/models/{model}/infer", AMUSE_SCOPE_INFER, am__handle_infer},
    {"POST", "/v2/models/{model}/versions/{version}/infer", AMUSE_SCOPE_INFER, am__handle_infer},
    {"POST", "/v2/models/{model}/generate", AMUSE_SCOPE_INFER, am__handle_generate},
    {"POST", "/v2/models/{model}/generate_stream", AMUSE_SCOPE_INFER, am__handle_generate},
    {"GET", "/v2/models/{model}/stats", AMUSE_SCOPE_ADMIN, am__handle_model_stats},
    {"GET", "/v2/repository/index", AMUSE_SCOPE_ADMIN, am__handle_repository_index},
    {"POST", "/v2/repository/index", AMUSE_SCOPE_ADMIN, am__handle_repository_index},
    {"POST", "/v2/repository/models/{model}/load", AMUSE_SCOPE_ADMIN,
     am__handle_repository_load},
    {"GET", "/v1/models", AMUSE_SCOPE_INFER, am__handle_openai_models},
    {"GET", "/v1/models/{model}", AMUSE_SCOPE_INFER, am__handle_openai_model},
    {"POST", "/v1/embeddings", AMUSE_SCOPE_INFER, am__handle_openai_embeddings},
    {"POST", "/v1/completions", AMUSE_SCOPE_INFER, am__handle_completions},
    {"POST", "/v1/chat/completions", AMUSE_SCOPE_INFER, am__handle_chat_completions},
    {"POST", "/v1/images/classify", AMUSE_SCOPE_INFER, am__handle_images_classify},
    {"GET", "/v1/words/similar", AMUSE_SCOPE_INFER, am__handle_words_similar},
    {"POST", "/v1/words/analogy", AMUSE_SCOPE_INFER, am__handle_words_analogy},
    {"POST", "/v1/text/sentiment", AMUSE_SCOPE_INFER, am__handle_text_sentiment},
    {"POST", "/v1/audio/transcriptions", AMUSE_SCOPE_INFER, am__handle_audio_transcriptions},
    {"POST", "/v1/events", AMUSE_SCOPE_INFER, am__handle_events_post},
    {"POST", "/v1/items", AMUSE_SCOPE_INFER, am__handle_items_post},
    {"GET", "/v1/items/{item}", AMUSE_SCOPE_INFER, am__handle_item_get},
    {"GET", "/v1/users/{user}/events", AMUSE_SCOPE_ADMIN, am__handle_user_events},
    {"GET", "/v1/users/{user}/export", AMUSE_SCOPE_ADMIN, am__handle_user_export},
    {"DELETE", "/v1/users/{user}", AMUSE_SCOPE_ADMIN, am__handle_user_delete},
    {"GET", "/v1/recommendations", AMUSE_SCOPE_INFER, am__handle_recommendations},
    {"GET", "/v1/items/{id}/similar", AMUSE_SCOPE_INFER, am__handle_items_similar},
    {"GET", "/v1/models/{model}/users", AMUSE_SCOPE_INFER, am__handle_model_users},
    {"GET", "/metrics", AMUSE_SCOPE_ADMIN, am__handle_metrics},
    {NULL, NULL, 0, NULL},
};

const char *amuse_server_route(int i, const char **method)
{
    int n = (int)(sizeof am__routes / sizeof am__routes[0]) - 1;
    if (i < 0 || i >= n)
        return NULL;
    if (method)
        *method = am__routes[i].method;
    return am__routes[i].pattern;
}

/* Match path against pattern segment by segment; captures ({name} segments, at most
 * AM__ROUTE_CAPTURES) go into r (if not NULL) under their names. */
static int path_matches(const char *pattern, const char *path, struct am__request *r)
{
    const char *p = pattern, *s = path;
    const char *name[AM__MAX_CAPTURES], *value[AM__MAX_CAPTURES];
    size_t name_len[AM__MAX_CAPTURES], value_len[AM__MAX_CAPTURES];
    int n = 0;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return 0;
        p++;
        s++;
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), sl = se ? (size_t)(se - s) : strlen(s);
        if (!pe && strcmp(p, "{path}") == 0) { /* last: the rest of the path, slashes and all */
            if (!*s)
                return 0;
            p += pl;
            s += strlen(s);
            break;
        }
        if (pl > 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (sl == 0 || sl >= sizeof r->param_buf[0] || n == AM__MAX_CAPTURES)
                return 0;
            name[n] = p + 1;
            name_len[n] = pl - 2;
            value[n] = s;
            value_len[n] = sl;
            n++;
        } else if (pl != sl || strncmp(p, s, pl) != 0) {
            return 0;
        }
        p += pl;
        s += sl;
    }
    if (*p || *s)
        return 0;
    if (r) {
        r->param_model = r->param_version = NULL;
        r->n_params = n;
        for (int i = 0; i < n; i++) {
            memcpy(r->param_buf[i], value[i], value_len[i]);
            r->param_buf[i][value_len[i]] = '\0';
            r->param_name[i] = name[i];
            r->param_name_len[i] = name_len[i];
        }
        r->param_model = am__request_param(r, "model");
        r->param_version = am__request_param(r, "version");
    }
    return 1;
}

const char *am__request_param(const struct am__request *r, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < r->n_params; i++)
        if (r->param_name_len[i] == len && strncmp(r->param_name[i], name, len) == 0)
            return r->param_buf[i];
    return NULL;
}

const struct am__route *am__route_match(const char *method, const char *path,
                                        struct am__request *r, int *path_matched)
{
    *path_matched = 0;
    for (const struct am__route *rt = am__routes; rt->method; rt++) {
        if (!path_matches(rt->pattern, path, NULL))
            continue;
        *path_matched = 1;
        if (strcmp(rt->method, method) == 0) {
            path_matches(rt->pattern, path, r);
            return rt;
        }
    }
    return NULL;
}
