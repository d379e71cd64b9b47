/* test_events.c - the per-tenant events store (src/recsys/events_store.c) on a real database: a
 * SQLite file in a temporary directory, or the database named by AMUSE_TEST_DB_URL (a
 * postgres:// url) when set. Tenants carry a per-run suffix, so a shared PostgreSQL database
 * left with rows from an earlier run does not change the answers. */
#include "amuse/recsys.h"
#include "amuse/word2vec.h"
#include "core/internal.h"
#include "recsys/events_store.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>

static char dir[] = "/tmp/amuse-test-events-XXXXXX";
static char path[256];
static char tenant_a[64], tenant_b[64];
static const int64_t NOW = 1700000000;

static const char *url(void)
{
    const char *u = getenv("AMUSE_TEST_DB_URL");
    return u && *u ? u : path;
}

static int is_sqlite(void) { return url() == path; }

static struct am__event ev(const char *user, const char *item, int type, double value,
                           int64_t time)
{
    struct am__event e = {0};
    e.user = user;
    e.item = item;
    e.type = type;
    e.has_value = type == AM__EVENT_RATING;
    e.value = value;
    e.has_time = 1;
    e.time = time;
    return e;
}

static struct am__event review(const char *user, const char *item, const char *text,
                               double sentiment)
{
    struct am__event e = ev(user, item, AM__EVENT_REVIEW, 0, NOW - 10);
    e.text = text;
    e.text_len = strlen(text);
    e.has_sentiment = 1;
    e.sentiment = sentiment;
    return e;
}

static void add(struct am__events_store *es, const char *tenant, struct am__event *e, int n)
{
    for (int i = 0; i < n; i++)
        ASSERT_OK(am__event_check(&e[i], NOW));
    ASSERT_OK(am__events_add(es, tenant, e, n, "b1", NOW, NULL, NULL, NULL));
}

TEST(rules_name_the_field)
{
    struct am__event e = ev("u1", "i1", AM__EVENT_RATING, 7, NOW);
    ASSERT_FAILS(am__event_check(&e, NOW), AMUSE_EINVAL, "value: rating 7 is outside 0.5..5");
    e = ev("u1", "i1", AM__EVENT_RATING, 0, NOW);
    e.has_value = 0;
    ASSERT_FAILS(am__event_check(&e, NOW), AMUSE_EINVAL, "a rating needs a value");
    e = ev("u1", "i1", AM__EVENT_PLAY, 0, NOW + AM__EVENTS_MAX_SKEW_S + 1);
    ASSERT_FAILS(am__event_check(&e, NOW), AMUSE_EINVAL, "timestamp:");
    e = ev("u1", "i1", AM__EVENT_PLAY, 0, NOW + AM__EVENTS_MAX_SKEW_S); /* the skew is allowed */
    ASSERT_OK(am__event_check(&e, NOW));
    ASSERT_EQ_INT(e.has_value, 1); /* a play counts 1 by default */
    e = ev("u 1", "i1", AM__EVENT_PLAY, 0, NOW);
    ASSERT_FAILS(am__event_check(&e, NOW), AMUSE_EINVAL, "user: white space");
    e = review("u1", "i1", "fine \xff\xfe words", 0);
    ASSERT_FAILS(am__event_check(&e, NOW), AMUSE_EINVAL, "text: invalid UTF-8 at byte 5");
    e = ev("u1", "i1", AM__EVENT_REVIEW, 0, NOW);
    ASSERT_FAILS(am__event_check(&e, NOW), AMUSE_EINVAL, "text: a review needs its text");
    e = ev("u1", "i1", AM__EVENT_LIKE, 0, NOW);
    e.text = "words";
    e.text_len = 5;
    ASSERT_FAILS(am__event_check(&e, NOW), AMUSE_EINVAL, "only review events carry text");
    e = ev("u1", "i1", AM__EVENT_VIEW, 0, NOW);
    e.has_time = 0; /* missing: now */
    ASSERT_OK(am__event_check(&e, NOW));
    ASSERT_EQ_INT(e.time, NOW);

    /* The JSON form: unknown fields and wrong types are refused by name. */
    cJSON *o = cJSON_Parse("{\"user\": \"u\", \"item\": \"i\", \"type\": \"like\", "
                           "\"timestmap\": 5}");
    ASSERT_FAILS(am__event_from_json(o, &e), AMUSE_EINVAL, "timestmap: unknown field");
    cJSON_Delete(o);
    o = cJSON_Parse("{\"user\": \"u\", \"item\": \"i\", \"type\": \"like\", \"timestamp\": 1.5}");
    ASSERT_FAILS(am__event_from_json(o, &e), AMUSE_EINVAL, "timestamp: must be an integer");
    cJSON_Delete(o);
    o = cJSON_Parse("{\"user\": \"u\", \"item\": 7, \"type\": \"like\"}");
    ASSERT_FAILS(am__event_from_json(o, &e), AMUSE_EINVAL, "item: must be a string");
    cJSON_Delete(o);
    o = cJSON_Parse("{\"user\": \"u\", \"item\": \"i\", \"type\": \"buy\"}");
    ASSERT_FAILS(am__event_from_json(o, &e), AMUSE_EINVAL, "type: 'buy' is not");
    cJSON_Delete(o);
    o = cJSON_Parse("{\"user\": \"u\", \"item\": \"i\", \"type\": \"rating\", \"value\": 4.5, "
                    "\"timestamp\": 1600000000}");
    ASSERT_OK(am__event_from_json(o, &e));
    ASSERT_OK(am__event_check(&e, NOW));
    ASSERT_EQ_INT(e.time, 1600000000);
    ASSERT_NEAR(e.value, 4.5, 0);
    cJSON_Delete(o);

    char tags[AM__EVENTS_MAX_META + 1];
    struct am__item it;
    o = cJSON_Parse("{\"id\": \"m1\", \"title\": \"Heat\", \"tags\": [\"Crime\", \"Drama\"]}");
    ASSERT_OK(am__item_from_json(o, &it, tags));
    ASSERT_STR_EQ(it.tags, "Crime|Drama");
    cJSON_Delete(o);
    o = cJSON_Parse("{\"id\": \"m1\", \"tags\": [\"a|b\"]}");
    ASSERT_FAILS(am__item_from_json(o, &it, tags), AMUSE_EINVAL, "tags[0]: holds '|'");
    cJSON_Delete(o);
}

TEST(events_go_in_and_come_back_newest_first)
{
    struct am__events_store *es = NULL;
    ASSERT_OK(am__events_open(&es, url()));
    struct am__event e[5] = {ev("alice", "m1", AM__EVENT_PLAY, 0, NOW - 50),
                             ev("alice", "m2", AM__EVENT_RATING, 4.5, NOW - 40),
                             ev("alice", "m3", AM__EVENT_LIKE, 0, NOW - 40),
                             review("alice", "m2", "a warm and funny film", 0.8),
                             ev("bob", "m1", AM__EVENT_VIEW, 0, NOW - 5)};
    add(es, tenant_a, e, 5);
    struct am__event_list l;
    ASSERT_OK(am__events_user_events(es, tenant_a, "alice", 2, 0, 0, 0, &l));
    ASSERT_EQ_INT(l.n, 2);
    ASSERT_EQ_INT(l.more, 1);
    ASSERT_EQ_INT(l.rows[0].type, AM__EVENT_REVIEW); /* NOW - 10 */
    ASSERT_STR_EQ(l.rows[0].text, "a warm and funny film");
    ASSERT_NEAR(l.rows[0].sentiment, 0.8, 1e-9);
    ASSERT_EQ_INT(l.rows[1].type, AM__EVENT_LIKE); /* same time as the rating, arrived later */
    int64_t t = l.rows[1].time, s = l.rows[1].seq;
    am__event_list_release(&l);
    ASSERT_OK(am__events_user_events(es, tenant_a, "alice", 10, 1, t, s, &l));
    ASSERT_EQ_INT(l.n, 2);
    ASSERT_EQ_INT(l.more, 0);
    ASSERT_EQ_INT(l.rows[0].type, AM__EVENT_RATING);
    ASSERT_NEAR(l.rows[0].value, 4.5, 0);
    ASSERT_STR_EQ(l.rows[1].item, "m1");
    am__event_list_release(&l);

    /* Items never declared were created without metadata; an upsert fills them in and keeps
     * what it does not name. */
    struct am__item_info info;
    ASSERT_OK(am__events_get_item(es, tenant_a, "m2", &info));
    ASSERT_TRUE(info.title == NULL);
    ASSERT_EQ_INT(info.events, 2);
    ASSERT_EQ_INT(info.reviews, 1);
    ASSERT_NEAR(info.sentiment_mean, 0.8, 1e-9);
    am__item_info_release(&info);
    struct am__item items[2] = {{"m2", "Heat (1995)", "Crime|Drama", NULL},
                                {"m9", "Up", NULL, NULL}};
    int64_t created = 0, updated = 0;
    ASSERT_OK(am__events_put_items(es, tenant_a, items, 2, NOW, &created, &updated));
    ASSERT_EQ_INT(created, 1);
    ASSERT_EQ_INT(updated, 1);
    struct am__item only_text = {"m2", NULL, NULL, "A heist film."};
    ASSERT_OK(am__events_put_items(es, tenant_a, &only_text, 1, NOW, &created, &updated));
    ASSERT_OK(am__events_get_item(es, tenant_a, "m2", &info));
    ASSERT_STR_EQ(info.title, "Heat (1995)");
    ASSERT_STR_EQ(info.tags, "Crime|Drama");
    ASSERT_STR_EQ(info.text, "A heist film.");
    am__item_info_release(&info);

    /* Reviews of one item average their scores. */
    struct am__event more[2] = {review("carol", "m2", "dull", -0.6),
                                review("dave", "m2", "unscored", 0)};
    more[1].has_sentiment = 0;
    add(es, tenant_a, more, 2);
    ASSERT_OK(am__events_get_item(es, tenant_a, "m2", &info));
    ASSERT_EQ_INT(info.reviews, 3);
    ASSERT_EQ_INT(info.scored_reviews, 2);
    ASSERT_NEAR(info.sentiment_mean, 0.1, 1e-9);
    am__item_info_release(&info);

    /* Training data: every event, users and items in first-seen order. */
    struct amuse_rec_data *d = NULL;
    ASSERT_OK(am__events_read_tenant(es, tenant_a, &d));
    ASSERT_EQ_INT(d->n, 7);
    ASSERT_EQ_INT(amuse_vocab_size(d->users), 4);
    ASSERT_NEAR(d->value[1], 4.5, 0);
    ASSERT_NEAR(d->value[0], 1, 0);
    amuse_rec_data_free(d);
    am__events_close(es);
}

TEST(tenants_never_see_each_other)
{
    struct am__events_store *es = NULL;
    ASSERT_OK(am__events_open(&es, url()));
    struct am__event e[1] = {ev("alice", "secret-item", AM__EVENT_LIKE, 0, NOW)};
    add(es, tenant_b, e, 1);
    struct am__event_list l;
    struct am__item_info info;
    /* B's alice is not A's alice: A's listing has only A's events. */
    ASSERT_OK(am__events_user_events(es, tenant_a, "alice", 100, 0, 0, 0, &l));
    for (int i = 0; i < l.n; i++)
        ASSERT_TRUE(strcmp(l.rows[i].item, "secret-item") != 0);
    am__event_list_release(&l);
    ASSERT_FAILS(am__events_get_item(es, tenant_a, "secret-item", &info), AMUSE_ENOTFOUND,
                 "no item");
    struct am__delete_counts c;
    ASSERT_FAILS(am__events_delete_user(es, "nobody-" "tenant", "alice", NOW, &c),
                 AMUSE_ENOTFOUND, "no user");
    ASSERT_OK(am__events_user_events(es, tenant_b, "alice", 100, 0, 0, 0, &l));
    ASSERT_EQ_INT(l.n, 1);
    am__event_list_release(&l);
    struct amuse_rec_data *d = NULL;
    ASSERT_OK(am__events_read_tenant(es, tenant_b, &d));
    ASSERT_EQ_INT(d->n, 1);
    amuse_rec_data_free(d);
    am__events_close(es);
}

static int file_contains(const char *file, const char *needle)
{
    char *buf = NULL;
    size_t len = 0;
    if (am__read_file(file, (size_t)1 << 30, &buf, &len))
        return 0;
    size_t k = strlen(needle);
    int hit = 0;
    for (size_t i = 0; !hit && i + k <= len; i++)
        hit = memcmp(buf + i, needle, k) == 0;
    free(buf);
    return hit;
}

TEST(delete_leaves_no_trace)
{
    struct am__events_store *es = NULL;
    ASSERT_OK(am__events_open(&es, url()));
    struct am__event e[3] = {ev("zed-4417-quokka", "m1", AM__EVENT_PLAY, 0, NOW - 100),
                             review("zed-4417-quokka", "m2", "marmalade-zebra-7731 was great", 0.5),
                             ev("keeper", "m1", AM__EVENT_PLAY, 0, NOW - 100)};
    add(es, tenant_a, e, 3);
    int deleted = 1;
    ASSERT_OK(am__events_user_deleted_after(es, tenant_a, "zed-4417-quokka", 0, &deleted));
    ASSERT_EQ_INT(deleted, 0);
    struct am__buf x = {0};
    ASSERT_OK(am__events_export_user(es, tenant_a, "zed-4417-quokka", &x));
    ASSERT_CONTAINS(x.data, "marmalade-zebra-7731");
    cJSON *doc = cJSON_Parse(x.data);
    ASSERT_TRUE(doc != NULL);
    ASSERT_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "events")), 2);
    cJSON_Delete(doc);
    am__buf_release(&x);

    struct am__delete_counts c;
    ASSERT_OK(am__events_delete_user(es, tenant_a, "zed-4417-quokka", NOW, &c));
    ASSERT_EQ_INT(c.events, 2);
    ASSERT_EQ_INT(c.reviews, 1);
    ASSERT_EQ_INT(c.profile, 1);
    ASSERT_OK(am__events_user_deleted_after(es, tenant_a, "zed-4417-quokka", NOW - 1, &deleted));
    ASSERT_EQ_INT(deleted, 1);
    ASSERT_OK(am__events_user_deleted_after(es, tenant_a, "zed-4417-quokka", NOW + 1, &deleted));
    ASSERT_EQ_INT(deleted, 0); /* a model trained after the delete may know the user afresh */
    ASSERT_OK(am__events_user_deleted_after(es, tenant_b, "zed-4417-quokka", 0, &deleted));
    ASSERT_EQ_INT(deleted, 0); /* the hash is per tenant */
    struct am__event_list l;
    ASSERT_FAILS(am__events_user_events(es, tenant_a, "zed-4417-quokka", 10, 0, 0, 0, &l),
                 AMUSE_ENOTFOUND, "no user");
    ASSERT_FAILS(am__events_export_user(es, tenant_a, "zed-4417-quokka", &x), AMUSE_ENOTFOUND,
                 "no user");
    am__buf_release(&x);
    ASSERT_FAILS(am__events_delete_user(es, tenant_a, "zed-4417-quokka", NOW, &c),
                 AMUSE_ENOTFOUND, "no user");
    ASSERT_OK(am__events_user_events(es, tenant_a, "keeper", 10, 0, 0, 0, &l));
    ASSERT_EQ_INT(l.n, 1);
    am__event_list_release(&l);
    am__events_close(es);
    if (is_sqlite()) { /* the files: neither the id nor the review text survives */
        char wal[300];
        snprintf(wal, sizeof wal, "%s-wal", path);
        ASSERT_TRUE(!file_contains(path, "zed-4417-quokka"));
        ASSERT_TRUE(!file_contains(path, "marmalade-zebra-7731"));
        ASSERT_TRUE(!file_contains(wal, "zed-4417-quokka"));
        ASSERT_TRUE(!file_contains(wal, "marmalade-zebra-7731"));
        ASSERT_TRUE(file_contains(path, "keeper") || file_contains(wal, "keeper"));
    }
}

static int hook_calls, hook_abort;
static int mid_batch(void *ctx)
{
    (void)ctx;
    hook_calls++;
    return hook_abort;
}

TEST(a_batch_is_all_or_nothing)
{
    struct am__events_store *es = NULL;
    ASSERT_OK(am__events_open(&es, url()));
    struct am__event e[4] = {ev("u-all", "aon-1", AM__EVENT_PLAY, 0, NOW),
                             ev("u-all", "aon-2", AM__EVENT_PLAY, 0, NOW),
                             ev("u-all", "aon-3", AM__EVENT_PLAY, 0, NOW),
                             ev("u-all", "aon-4", AM__EVENT_PLAY, 0, NOW)};
    for (int i = 0; i < 4; i++)
        ASSERT_OK(am__event_check(&e[i], NOW));
    struct am__events_hook hook = {mid_batch, NULL};
    struct am__idempotency idem = {"key-1", {1, 2, 3}, 200, "{\"accepted\": 4}"};
    struct am__event_list l;
    struct am__item_info info;
    int found = 0, status = 0;
    unsigned char hash[32];
    struct am__buf reply = {0};

    /* Stopped half-way inside its transaction: nothing of it stays, not even its key. */
    hook_abort = 1;
    ASSERT_FAILS(am__events_add(es, tenant_a, e, 4, "b-idem", NOW, &idem, &hook, NULL),
                 AMUSE_EIO, "stopped half-way");
    ASSERT_EQ_INT(hook_calls, 1);
    ASSERT_FAILS(am__events_user_events(es, tenant_a, "u-all", 100, 0, 0, 0, &l),
                 AMUSE_ENOTFOUND, "no user");
    ASSERT_FAILS(am__events_get_item(es, tenant_a, "aon-1", &info), AMUSE_ENOTFOUND, "no item");
    ASSERT_OK(am__events_idempotency_get(es, tenant_a, "key-1", NOW, &found, hash, &status,
                                         &reply));
    ASSERT_EQ_INT(found, 0);

    /* The same batch again goes in whole and claims the key; a retry with it writes nothing. */
    hook_abort = 0;
    int64_t created = 0;
    ASSERT_OK(am__events_add(es, tenant_a, e, 4, "b-idem", NOW, &idem, &hook, &created));
    ASSERT_EQ_INT(created, 4);
    ASSERT_EQ_INT(am__events_add(es, tenant_a, e, 4, "b-idem2", NOW, &idem, NULL, NULL), 1);
    ASSERT_OK(am__events_user_events(es, tenant_a, "u-all", 100, 0, 0, 0, &l));
    ASSERT_EQ_INT(l.n, 4);
    ASSERT_STR_EQ(l.rows[0].batch, "b-idem");
    am__event_list_release(&l);
    ASSERT_OK(am__events_idempotency_get(es, tenant_a, "key-1", NOW, &found, hash, &status,
                                         &reply));
    ASSERT_EQ_INT(found, 1);
    ASSERT_EQ_INT(status, 200);
    ASSERT_EQ_INT(hash[2], 3);
    ASSERT_STR_EQ(reply.data, "{\"accepted\": 4}");
    am__buf_release(&reply);
    /* Another tenant's key of the same name is its own; a key past its day is forgotten. */
    ASSERT_OK(am__events_idempotency_get(es, tenant_b, "key-1", NOW, &found, hash, &status,
                                         &reply));
    ASSERT_EQ_INT(found, 0);
    ASSERT_OK(am__events_idempotency_get(es, tenant_a, "key-1",
                                         NOW + AM__EVENTS_IDEMPOTENCY_S + 1, &found, hash,
                                         &status, &reply));
    ASSERT_EQ_INT(found, 0);
    am__buf_release(&reply);
    am__events_close(es);
}

int main(void)
{
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    snprintf(path, sizeof path, "%s/events.db", dir);
    snprintf(tenant_a, sizeof tenant_a, "a-%ld", (long)getpid());
    snprintf(tenant_b, sizeof tenant_b, "b-%ld", (long)getpid());
    printf("database: %s\n", url());
    RUN(rules_name_the_field);
    RUN(events_go_in_and_come_back_newest_first);
    RUN(tenants_never_see_each_other);
    RUN(delete_leaves_no_trace);
    RUN(a_batch_is_all_or_nothing);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
