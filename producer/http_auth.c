/*
 * http_auth: see http_auth.h. OpenSSL's SHA256, HMAC and CRYPTO_memcmp.
 */
#include "http_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int auth_tokens_add(auth_tokens *t, const char *token, size_t len)
{
    if (len == 0 || len > 4096)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (token[i] == ' ' || token[i] == '\t' || token[i] == '\r' || token[i] == '\n' ||
            token[i] == '\0')
            return -1;
    }
    unsigned char(*grown)[32] = realloc(t->digests, (t->count + 1) * sizeof *grown);
    if (!grown)
        return -2;
    t->digests = grown;
    SHA256((const unsigned char *)token, len, t->digests[t->count]);
    t->count++;
    return 0;
}

void auth_tokens_free(auth_tokens *t)
{
    if (t->digests)
        OPENSSL_cleanse(t->digests, t->count * sizeof *t->digests);
    free(t->digests);
    t->digests = NULL;
    t->count = 0;
}

int auth_bearer_ok(const auth_tokens *t, const char *authorization)
{
    static const char scheme[] = "Bearer ";
    if (!authorization || strncasecmp(authorization, scheme, sizeof scheme - 1) != 0)
        return 0;
    const char *token = authorization + sizeof scheme - 1;
    while (*token == ' ')
        token++;
    size_t len = strlen(token);
    while (len > 0 && (token[len - 1] == ' ' || token[len - 1] == '\t'))
        len--;
    if (len == 0)
        return 0;
    unsigned char d[32];
    SHA256((const unsigned char *)token, len, d);
    int ok = 0;
    for (size_t i = 0; i < t->count; i++) /* no early exit: the same work for every token */
        ok |= CRYPTO_memcmp(d, t->digests[i], sizeof d) == 0;
    return ok;
}

int auth_signature_ok(const void *secret, size_t secret_len, const char *prefix, const char *header,
                      const void *body, size_t body_len)
{
    size_t plen = strlen(prefix);
    if (!header || strncmp(header, prefix, plen) != 0)
        return 0;
    const char *hex = header + plen;
    size_t hlen = strlen(hex);
    while (hlen > 0 && (hex[hlen - 1] == ' ' || hex[hlen - 1] == '\t'))
        hlen--;
    unsigned char given[32], want[32];
    if (hlen != 2 * sizeof given)
        return 0;
    for (size_t i = 0; i < sizeof given; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        given[i] = (unsigned char)(hi << 4 | lo);
    }
    unsigned int wlen = 0;
    static const unsigned char empty[1];
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, body_len ? body : empty, body_len, want,
              &wlen) ||
        wlen != sizeof want)
        return 0;
    return CRYPTO_memcmp(given, want, sizeof want) == 0;
}
