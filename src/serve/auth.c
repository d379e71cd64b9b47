/* auth.c - API key tokens: making them, hashing them, checking them.
 *
 * A token is "amuse_<id>_<secret>": id is 12 hex digits (6 random bytes) and names the row; the
 * secret is 32 random bytes in base64url. Only BLAKE2b-256(key = the database's salt, message =
 * the whole token) is stored. A keyed fast hash is enough here: the secret has 256 bits of
 * entropy, so there is nothing to brute-force, and a slow password hash (crypto_pwhash) would cost
 * tens of milliseconds on every request. The check is constant-time (sodium_memcmp).
 * Not here: rate limits and usage counters (a later phase keys them by the id). */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include <sodium.h>
#include <string.h>
#include <time.h>

#define TOKEN_PREFIX "amuse_"
#define SECRET_BYTES 32

const char *amuse_key_scope_name(int scope)
{
    return scope == AMUSE_SCOPE_ADMIN ? "admin" : scope == AMUSE_SCOPE_INFER ? "infer" : "?";
}

int amuse_key_scope_parse(const char *name)
{
    if (strcmp(name, "admin") == 0)
        return AMUSE_SCOPE_ADMIN;
    if (strcmp(name, "infer") == 0)
        return AMUSE_SCOPE_INFER;
    return 0;
}

static void token_hash(const struct amuse_keystore *ks, const char *token, size_t len,
                       unsigned char out[AM__HASH_BYTES])
{
    crypto_generichash(out, AM__HASH_BYTES, (const unsigned char *)token, len,
                       am__keystore_salt(ks), AM__SALT_BYTES);
}

int am__tenant_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > AMUSE_TENANT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int amuse_keystore_create(struct amuse_keystore *ks, const char *tenant, int scope,
                          char token[AMUSE_KEY_TOKEN_MAX], struct amuse_key_info *info)
{
    token[0] = '\0';
    if (!tenant || !am__tenant_ok(tenant))
        return am__fail(AMUSE_EINVAL,
                        "tenant '%s': use 1 to %d characters of letters, digits, '.', '_', '-'",
                        tenant ? tenant : "", AMUSE_TENANT_MAX);
    if (scope != AMUSE_SCOPE_ADMIN && scope != AMUSE_SCOPE_INFER)
        return am__fail(AMUSE_EINVAL, "scope must be 'infer' or 'admin'");
    struct amuse_key_info k;
    memset(&k, 0, sizeof k);
    unsigned char id_bytes[AMUSE_KEY_ID_LEN / 2], secret[SECRET_BYTES];
    randombytes_buf(id_bytes, sizeof id_bytes);
    randombytes_buf(secret, sizeof secret);
    sodium_bin2hex(k.id, sizeof k.id, id_bytes, sizeof id_bytes);
    snprintf(k.tenant, sizeof k.tenant, "%s", tenant);
    k.scope = scope;
    k.created = (int64_t)time(NULL);

    char encoded[sodium_base64_ENCODED_LEN(SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(encoded, sizeof encoded, secret, sizeof secret,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(secret, sizeof secret);
    char tok[AMUSE_KEY_TOKEN_MAX];
    snprintf(tok, sizeof tok, TOKEN_PREFIX "%s_%s", k.id, encoded);
    sodium_memzero(encoded, sizeof encoded);
    unsigned char hash[AM__HASH_BYTES];
    token_hash(ks, tok, strlen(tok), hash);
    int rc = am__keystore_insert(ks, &k, hash);
    if (rc == AMUSE_OK) {
        memcpy(token, tok, sizeof tok);
        if (info)
            *info = k;
    }
    sodium_memzero(tok, sizeof tok);
    return rc;
}

int amuse_keystore_verify(struct amuse_keystore *ks, const char *token, size_t len,
                          struct amuse_key_info *info)
{
    size_t prefix = sizeof TOKEN_PREFIX - 1;
    if (len < prefix + AMUSE_KEY_ID_LEN + 2 || len >= AMUSE_KEY_TOKEN_MAX ||
        memcmp(token, TOKEN_PREFIX, prefix) != 0 || token[prefix + AMUSE_KEY_ID_LEN] != '_')
        return am__fail(AMUSE_ENOTFOUND, "API key: not an amuse key");
    char id[AMUSE_KEY_ID_LEN + 1];
    for (int i = 0; i < AMUSE_KEY_ID_LEN; i++) {
        char c = token[prefix + (size_t)i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return am__fail(AMUSE_ENOTFOUND, "API key: malformed id");
        id[i] = c;
    }
    id[AMUSE_KEY_ID_LEN] = '\0';
    struct amuse_key_info k;
    unsigned char stored[AM__HASH_BYTES], presented[AM__HASH_BYTES];
    int rc = am__keystore_lookup(ks, id, &k, stored);
    if (rc)
        return rc;
    token_hash(ks, token, len, presented);
    if (sodium_memcmp(stored, presented, AM__HASH_BYTES) != 0)
        return am__fail(AMUSE_ENOTFOUND, "API key %s: wrong secret", id);
    if (k.revoked)
        return am__fail(AMUSE_ENOTFOUND, "API key %s: revoked", id);
    if (info)
        *info = k;
    return AMUSE_OK;
}
