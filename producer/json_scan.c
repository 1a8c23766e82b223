/*
 * json_scan: see json_scan.h.
 */
#include "json_scan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t json_skip_ws(const char *s, size_t len, size_t pos)
{
    while (pos < len && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r'))
        pos++;
    return pos;
}

/* Length of the string starting at s[0] == '"', quotes included; 0 if cut. */
static size_t string_len(const char *s, size_t len)
{
    for (size_t i = 1; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

size_t json_value_len(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    if (s[0] == '"')
        return string_len(s, len);
    if (s[0] == '{' || s[0] == '[') {
        /* Brackets are only counted: whether they pair up correctly is the
         * strict check's business. */
        size_t depth = 0;
        for (size_t i = 0; i < len; i++) {
            char c = s[i];
            if (c == '"') {
                size_t n = string_len(s + i, len - i);
                if (n == 0)
                    return 0;
                i += n - 1;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return 0;
    }
    /* A scalar: runs up to a delimiter. */
    size_t i = 0;
    while (i < len && !strchr(",]} \t\r\n", s[i]))
        i++;
    return i;
}

int json_array_begin(json_array_iter *it, const char *s, size_t len)
{
    size_t pos = json_skip_ws(s, len, 0);
    if (pos >= len || s[pos] != '[')
        return -1;
    it->s = s;
    it->len = len;
    it->pos = pos + 1;
    it->first = 1;
    return 0;
}

int json_array_next(json_array_iter *it, const char **item, size_t *item_len)
{
    size_t pos = json_skip_ws(it->s, it->len, it->pos);
    if (pos >= it->len)
        return -1;
    if (it->s[pos] == ']') {
        it->pos = pos + 1;
        return 0;
    }
    if (!it->first) {
        if (it->s[pos] != ',')
            return -1;
        pos = json_skip_ws(it->s, it->len, pos + 1);
    }
    size_t n = json_value_len(it->s + pos, it->len - pos);
    if (n == 0)
        return -1;
    *item = it->s + pos;
    *item_len = n;
    it->pos = pos + n;
    it->first = 0;
    return 1;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_hex4(const char *s, size_t len, size_t i, unsigned *out)
{
    if (i + 4 > len)
        return -1;
    unsigned v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hex_value(s[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80)
        return out[0] = (char)cp, 1;
    if (cp < 0x800)
        return out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes the JSON string s[0, len) (quotes included) into out; returns
 * its length, or -1 if malformed or longer than cap. */
static long decode_string(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 1; i + 1 < len; i++) {
        char c = s[i];
        if (n + 4 > cap)
            return -1;
        if (c != '\\') {
            out[n++] = c;
            continue;
        }
        if (++i + 1 >= len)
            return -1;
        switch (s[i]) {
        case '"':
            out[n++] = '"';
            break;
        case '\\':
            out[n++] = '\\';
            break;
        case '/':
            out[n++] = '/';
            break;
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'n':
            out[n++] = '\n';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (read_hex4(s, len, i + 1, &cp) != 0)
                return -1;
            i += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && i + 2 < len && s[i + 1] == '\\' && s[i + 2] == 'u' &&
                read_hex4(s, len, i + 3, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            n += put_utf8(out + n, cp);
            break;
        }
        default:
            return -1;
        }
    }
    return (long)n;
}

/* The next reference token of a pointer, unescaped (~1 -> /, ~0 -> ~). */
static int next_token(const char **pointer, char *out, size_t cap, size_t *outlen)
{
    const char *p = *pointer;
    if (*p != '/')
        return -1;
    p++;
    size_t n = 0;
    while (*p && *p != '/') {
        char c = *p++;
        if (c == '~') {
            if (*p == '0')
                c = '~';
            else if (*p == '1')
                c = '/';
            else
                return -1;
            p++;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = c;
    }
    *outlen = n;
    *pointer = p;
    return 0;
}

int json_pointer_valid(const char *pointer)
{
    char token[1024];
    size_t n;
    while (*pointer) {
        if (next_token(&pointer, token, sizeof token, &n) != 0)
            return 0;
    }
    return 1;
}

/* In the object at s[0], finds the member named key; 0 with its value. */
static int object_member(const char *s, size_t len, const char *key, size_t keylen,
                         const char **out, size_t *out_len)
{
    char name[1024];
    size_t pos = json_skip_ws(s, len, 1);
    if (pos < len && s[pos] == '}')
        return -1;
    for (;;) {
        if (pos >= len || s[pos] != '"')
            return -2;
        size_t klen = string_len(s + pos, len - pos);
        if (klen == 0)
            return -2;
        long nlen = decode_string(s + pos, klen, name, sizeof name);
        pos = json_skip_ws(s, len, pos + klen);
        if (pos >= len || s[pos] != ':')
            return -2;
        pos = json_skip_ws(s, len, pos + 1);
        size_t vlen = json_value_len(s + pos, len - pos);
        if (vlen == 0)
            return -2;
        if (nlen >= 0 && (size_t)nlen == keylen && memcmp(name, key, keylen) == 0) {
            *out = s + pos;
            *out_len = vlen;
            return 0;
        }
        pos = json_skip_ws(s, len, pos + vlen);
        if (pos < len && s[pos] == '}')
            return -1;
        if (pos >= len || s[pos] != ',')
            return -2;
        pos = json_skip_ws(s, len, pos + 1);
    }
}

static int array_element(const char *s, size_t len, const char *index, size_t indexlen,
                         const char **out, size_t *out_len)
{
    if (indexlen == 0 || indexlen > 9 || (indexlen > 1 && index[0] == '0'))
        return -1;
    size_t want = 0;
    for (size_t i = 0; i < indexlen; i++) {
        if (index[i] < '0' || index[i] > '9')
            return -1;
        want = want * 10 + (size_t)(index[i] - '0');
    }
    json_array_iter it;
    if (json_array_begin(&it, s, len) != 0)
        return -2;
    for (size_t i = 0;; i++) {
        int rc = json_array_next(&it, out, out_len);
        if (rc <= 0)
            return rc == 0 ? -1 : -2;
        if (i == want)
            return 0;
    }
}

int json_pointer_find(const char *doc, size_t len, const char *pointer, const char **out,
                      size_t *out_len)
{
    size_t pos = json_skip_ws(doc, len, 0);
    const char *cur = doc + pos;
    size_t cur_len = json_value_len(cur, len - pos);
    if (cur_len == 0)
        return -2;
    char token[1024];
    size_t tlen;
    while (*pointer) {
        if (next_token(&pointer, token, sizeof token, &tlen) != 0)
            return -1;
        int rc;
        if (cur[0] == '{')
            rc = object_member(cur, cur_len, token, tlen, &cur, &cur_len);
        else if (cur[0] == '[')
            rc = array_element(cur, cur_len, token, tlen, &cur, &cur_len);
        else
            rc = -1;
        if (rc != 0)
            return rc;
    }
    *out = cur;
    *out_len = cur_len;
    return 0;
}
