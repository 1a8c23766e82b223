/* Unit tests of the amqps:// settings: the shared settings rows
 * (SETTING_AMQP_TLS) and mq_set_tls()'s checks. The TLS handshakes
 * themselves are tested against a real broker by test_tls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "mq.h"
#include "settings.h"

typedef struct tls_only {
    char *amqp_url;
    mq_tls amqp_tls;
} tls_only;

static const cfg_option table[] = {
    SETTING_AMQP_URL(tls_only),
    SETTING_AMQP_TLS(tls_only),
    CFG_END,
};

static void test_defaults_verify_everything(void **state)
{
    (void)state;
    tls_only s = {0};
    char *argv[] = {"prog", NULL};
    char err[256];
    assert_int_equal(cfg_parse(table, &s, 1, argv, err, sizeof err), CFG_OK);
    assert_string_equal(s.amqp_tls.ca_file, "");
    assert_string_equal(s.amqp_tls.cert_file, "");
    assert_int_equal(s.amqp_tls.verify_peer, 1);
    assert_int_equal(s.amqp_tls.verify_hostname, 1);
    assert_int_equal(mq_set_tls(&s.amqp_tls, err, sizeof err), 0);
    cfg_free(table, &s);
}

static void test_paths_from_environment_flags_win(void **state)
{
    (void)state;
    tls_only s = {0};
    char *argv[] = {"prog", "--amqp-verify-hostname", "false", "--amqp-ca-file", "/flag/ca.pem",
                    NULL};
    char err[256];
    setenv("SLUICE_AMQP_CA_FILE", "/env/ca.pem", 1);
    setenv("SLUICE_AMQP_CERT_FILE", "/env/client.pem", 1);
    assert_int_equal(cfg_parse(table, &s, 5, argv, err, sizeof err), CFG_OK);
    unsetenv("SLUICE_AMQP_CA_FILE");
    unsetenv("SLUICE_AMQP_CERT_FILE");
    assert_string_equal(s.amqp_tls.ca_file, "/flag/ca.pem");
    assert_string_equal(s.amqp_tls.cert_file, "/env/client.pem");
    assert_int_equal(s.amqp_tls.verify_peer, 1);
    assert_int_equal(s.amqp_tls.verify_hostname, 0);
    cfg_free(table, &s);
}

static void test_certificate_needs_its_key(void **state)
{
    (void)state;
    char err[256];
    mq_tls only_cert = {.cert_file = "/etc/hostname", .verify_peer = 1};
    assert_int_equal(mq_set_tls(&only_cert, err, sizeof err), -1);
    assert_non_null(strstr(err, "amqp_cert_file is set but amqp_key_file is not"));
    mq_tls only_key = {.key_file = "/etc/hostname", .verify_peer = 1};
    assert_int_equal(mq_set_tls(&only_key, err, sizeof err), -1);
    assert_non_null(strstr(err, "amqp_key_file is set but amqp_cert_file is not"));
}

static void test_unreadable_file_is_named(void **state)
{
    (void)state;
    char err[256];
    mq_tls t = {.ca_file = "/nonexistent/sluice-ca.pem", .verify_peer = 1};
    assert_int_equal(mq_set_tls(&t, err, sizeof err), -1);
    assert_non_null(strstr(err, "amqp_ca_file: cannot read /nonexistent/sluice-ca.pem"));
}

/* The settings are copied: the caller may free its strings at once. */
static void test_settings_are_copied(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-ca-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char *ca = strdup(path);
    mq_tls t = {.ca_file = ca, .verify_peer = 1, .verify_hostname = 1};
    char err[256];
    assert_int_equal(mq_set_tls(&t, err, sizeof err), 0);
    memset(ca, 'x', strlen(ca));
    free(ca);
    /* The empty (so unusable) CA file is loaded from the copy; the error
     * names it and the URL without its password. */
    mq_conn *c = mq_connect("amqps://user:secret@127.0.0.1:1/", 0, 2000, err, sizeof err);
    unlink(path);
    assert_null(c);
    assert_null(strstr(err, "secret"));
    assert_non_null(strstr(err, "amqps://user@127.0.0.1:1/"));
    assert_non_null(strstr(err, path));
    mq_tls off = {.verify_peer = 1, .verify_hostname = 1};
    assert_int_equal(mq_set_tls(&off, err, sizeof err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_verify_everything),
        cmocka_unit_test(test_paths_from_environment_flags_win),
        cmocka_unit_test(test_certificate_needs_its_key),
        cmocka_unit_test(test_unreadable_file_is_named),
        cmocka_unit_test(test_settings_are_copied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
