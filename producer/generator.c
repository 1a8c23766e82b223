/*
 * generator: see generator.h. Values come from fixed word lists, so no
 * string needs JSON escaping; a few names carry non-ASCII letters so that
 * UTF-8 goes through the whole pipeline.
 */
#include "generator.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[GEN_KIND_COUNT] = {"profiles", "clickstream", "orders",
                                                       "sensors"};

int generator_kind_parse(const char *name, generator_kind *kind)
{
    for (int k = 0; k < GEN_KIND_COUNT; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *kind = (generator_kind)k;
            return 0;
        }
    }
    return -1;
}

const char *generator_kind_name(generator_kind kind)
{
    return kind_names[kind];
}

const char *generator_kind_list(void)
{
    return "profiles, clickstream, orders, sensors";
}

/* splitmix64: small, fast, and good enough to make varied test data. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t *rng, uint64_t n)
{
    return next_random(rng) % n;
}

static double uniform(uint64_t *rng)
{
    return (double)(next_random(rng) >> 11) / 9007199254740992.0;
}

#define PICK(rng, array) (array[below(rng, sizeof array / sizeof *array)])

static const char *const first_names[] = {"Ada",    "Alan", "Grace", "Linus", "Zoë",  "Björn",
                                          "Amélie", "Hiro", "Noor",  "Tomás", "Ines", "Kwame"};
static const char *const last_names[] = {"Lovelace", "Turing", "Hopper", "Nakamura", "Müller",
                                         "García",   "Okafor", "Larsen", "Dubois",   "Sato"};
static const char *const themes[] = {"dark", "light", "system"};
static const char *const languages[] = {"en", "de", "fr", "es", "ja", "pt", "ar"};
static const char *const categories[] = {"books", "music", "sports", "garden", "travel", "games"};
static const char *const pages[] = {"/", "/search", "/products", "/cart", "/checkout", "/help"};
static const char *const actions[] = {"view", "click", "scroll", "add_to_cart", "search"};
static const char *const devices[] = {"mobile", "desktop", "tablet"};
static const char *const oses[] = {"android", "ios", "linux", "macos", "windows"};
static const char *const currencies[] = {"EUR", "USD", "GBP", "JPY"};
static const char *const countries[] = {"DE", "FR", "US", "JP", "BR", "NG", "IN"};
static const char *const sensor_kinds[] = {"temperature", "humidity", "pressure", "co2"};
static const char *const sensor_units[] = {"C", "%", "hPa", "ppm"};

/* Appends formatted text; sets *ok = 0 once the buffer is full. */
typedef struct json_out {
    char *buf;
    size_t cap, len;
    int ok;
} json_out;

__attribute__((format(printf, 2, 3))) static void put(json_out *o, const char *fmt, ...)
{
    if (!o->ok)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->ok = 0;
    else
        o->len += (size_t)n;
}

static void make_profile(json_out *o, uint64_t *rng, uint64_t seq)
{
    put(o, "{\"user_id\":\"u-%llu\",\"name\":\"%s %s\"", (unsigned long long)(seq * 7 + 1),
        PICK(rng, first_names), PICK(rng, last_names));
    if (below(rng, 3))
        put(o, ",\"age\":%d", 18 + (int)below(rng, 70));
    if (below(rng, 2))
        put(o, ",\"email_verified\":%s", below(rng, 2) ? "true" : "false");
    put(o, ",\"preferences\":{\"theme\":\"%s\"", PICK(rng, themes));
    if (below(rng, 2))
        put(o, ",\"newsletter\":%s", below(rng, 2) ? "true" : "false");
    if (below(rng, 2)) {
        put(o, ",\"languages\":[");
        int n = 1 + (int)below(rng, 3);
        for (int i = 0; i < n; i++)
            put(o, "%s\"%s\"", i ? "," : "", PICK(rng, languages));
        put(o, "]");
    }
    put(o, "},\"behavior\":{\"sessions_30d\":%d,\"avg_session_s\":%.1f", (int)below(rng, 60),
        uniform(rng) * 900);
    if (below(rng, 2))
        put(o, ",\"churn_risk\":%.3f", uniform(rng));
    if (below(rng, 3) == 0)
        put(o, ",\"favourite_category\":\"%s\"", PICK(rng, categories));
    put(o, "}");
    if (below(rng, 4) == 0)
        put(o, ",\"referral_code\":null");
    put(o, "}");
}

static void make_click(json_out *o, uint64_t *rng, uint64_t seq)
{
    const char *action = PICK(rng, actions);
    put(o, "{\"session_id\":\"s-%llx\",\"user_id\":\"u-%llu\",\"action\":\"%s\",\"page\":\"%s\"",
        (unsigned long long)(seq / 8 + 0x1000), (unsigned long long)below(rng, 100000), action,
        PICK(rng, pages));
    if (strcmp(action, "search") == 0)
        put(o, ",\"query\":\"%s %s\"", PICK(rng, categories), PICK(rng, languages));
    if (strcmp(action, "add_to_cart") == 0)
        put(o, ",\"sku\":\"SKU-%05d\",\"qty\":%d", (int)below(rng, 99999), 1 + (int)below(rng, 4));
    if (strcmp(action, "scroll") == 0)
        put(o, ",\"depth_pct\":%d", (int)below(rng, 101));
    put(o, ",\"device\":{\"type\":\"%s\"", PICK(rng, devices));
    if (below(rng, 2))
        put(o, ",\"os\":\"%s\"", PICK(rng, oses));
    put(o, "}");
    if (below(rng, 3) == 0)
        put(o, ",\"referrer\":\"https://example.%s/\"", PICK(rng, languages));
    if (below(rng, 2))
        put(o, ",\"duration_ms\":%d", (int)below(rng, 30000));
    put(o, "}");
}

static void make_order(json_out *o, uint64_t *rng, uint64_t seq)
{
    int items = 1 + (int)below(rng, 5);
    double total = 0;
    put(o, "{\"order_id\":\"o-%llu\",\"customer_id\":\"u-%llu\",\"currency\":\"%s\",\"items\":[",
        (unsigned long long)seq, (unsigned long long)below(rng, 100000), PICK(rng, currencies));
    for (int i = 0; i < items; i++) {
        int qty = 1 + (int)below(rng, 3);
        double price = 1 + (double)below(rng, 20000) / 100.0;
        total += qty * price;
        put(o, "%s{\"sku\":\"SKU-%05d\",\"qty\":%d,\"price\":%.2f", i ? "," : "",
            (int)below(rng, 99999), qty, price);
        if (below(rng, 4) == 0)
            put(o, ",\"gift_wrap\":true");
        put(o, "}");
    }
    put(o, "],\"total\":%.2f,\"shipping\":{\"country\":\"%s\",\"express\":%s}", total,
        PICK(rng, countries), below(rng, 3) == 0 ? "true" : "false");
    if (below(rng, 5) == 0)
        put(o, ",\"coupon\":\"SAVE%d\"", 5 * (1 + (int)below(rng, 6)));
    if (below(rng, 10) == 0)
        put(o, ",\"notes\":\"leave at the door\"");
    put(o, "}");
}

static void make_reading(json_out *o, uint64_t *rng, uint64_t seq)
{
    int k = (int)below(rng, sizeof sensor_kinds / sizeof *sensor_kinds);
    static const double base[] = {21.0, 45.0, 1013.0, 420.0};
    static const double spread[] = {15.0, 40.0, 30.0, 600.0};
    put(o, "{\"device_id\":\"dev-%03d\",\"kind\":\"%s\",\"value\":%.2f,\"unit\":\"%s\"",
        (int)below(rng, 500), sensor_kinds[k], base[k] + (uniform(rng) - 0.5) * spread[k],
        sensor_units[k]);
    put(o, ",\"seq\":%llu", (unsigned long long)seq);
    if (below(rng, 2))
        put(o, ",\"battery\":%.2f", uniform(rng));
    if (below(rng, 3) == 0)
        put(o, ",\"location\":{\"lat\":%.5f,\"lon\":%.5f}", uniform(rng) * 180 - 90,
            uniform(rng) * 360 - 180);
    if (below(rng, 4) == 0) {
        int n = 2 + (int)below(rng, 4);
        put(o, ",\"samples\":[");
        for (int i = 0; i < n; i++)
            put(o, "%s%.2f", i ? "," : "", base[k] + (uniform(rng) - 0.5) * spread[k]);
        put(o, "]");
    }
    if (below(rng, 8) == 0)
        put(o, ",\"fault\":{\"code\":%d,\"transient\":%s}", 100 + (int)below(rng, 50),
            below(rng, 2) ? "true" : "false");
    put(o, "}");
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int generator_make(generator_kind kind, uint64_t seed, const char *source, uint64_t seq, char *buf,
                   size_t cap, char *id, size_t idcap)
{
    uint64_t rng = seed * 0x9e3779b97f4a7c15ULL ^ hash_name(source) ^ (seq * 0xd1b54a32d192ed03ULL);
    json_out o = {.buf = buf, .cap = cap, .len = 0, .ok = cap > 0};
    switch (kind) {
    case GEN_PROFILES:
        make_profile(&o, &rng, seq);
        break;
    case GEN_CLICKSTREAM:
        make_click(&o, &rng, seq);
        break;
    case GEN_ORDERS:
        make_order(&o, &rng, seq);
        break;
    case GEN_SENSORS:
    case GEN_KIND_COUNT:
        make_reading(&o, &rng, seq);
        break;
    }
    int n = snprintf(id, idcap, "%s-%llu-%llu", source, (unsigned long long)seed,
                     (unsigned long long)seq);
    if (!o.ok || n < 0 || (size_t)n >= idcap)
        return -1;
    return (int)o.len;
}
