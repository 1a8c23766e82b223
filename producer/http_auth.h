/*
 * http_auth: the checks the HTTP door (adapter http_server) makes of a
 * request's credentials, pure so they can be tested and fuzzed alone:
 *
 *  - bearer tokens: "Authorization: Bearer <token>" against a set of
 *    accepted tokens (several, so a token can be rotated: add the new one,
 *    move the clients, remove the old one);
 *  - a signature: the hex HMAC-SHA256 of the raw body under a shared
 *    secret, in a header with a fixed prefix ("sha256=<hex>", as GitHub's
 *    X-Hub-Signature-256 is).
 *
 * Comparisons take the same time whatever the bytes (CRYPTO_memcmp), and a
 * token is compared as its SHA-256 digest, so neither its content nor its
 * length leaks through timing; every accepted token is compared each time.
 */
#ifndef SLUICE_HTTP_AUTH_H
#define SLUICE_HTTP_AUTH_H

#include <stddef.h>

/* The accepted bearer tokens, kept as digests. A zeroed struct is an empty
 * set. Free with auth_tokens_free(). */
typedef struct auth_tokens {
    unsigned char (*digests)[32];
    size_t count;
} auth_tokens;

/* Adds a token (any bytes but none of " \t\r\n", 1 to 4096 of them).
 * Returns 0, -1 if it is not such a token, -2 if out of memory. */
int auth_tokens_add(auth_tokens *t, const char *token, size_t len);

void auth_tokens_free(auth_tokens *t);

/* 1 if `authorization` (the header's value; NULL if absent) is "Bearer "
 * (the word in any case) and a token of the set, else 0. */
int auth_bearer_ok(const auth_tokens *t, const char *authorization);

/*
 * 1 if `header` (the signature header's value; NULL if absent) is `prefix`
 * followed by the 64 hex digits (either case) of HMAC-SHA256(secret, body),
 * else 0.
 */
int auth_signature_ok(const void *secret, size_t secret_len, const char *prefix, const char *header,
                      const void *body, size_t body_len);

#endif
