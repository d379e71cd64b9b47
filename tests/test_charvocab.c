/* test_charvocab.c - the character vocabulary (amuse/charvocab.h): ids from counts, the JSON form
 * in a model's config, encoding rules for unknown characters, and bad input with byte offsets. */
#include "amuse/charvocab.h"

#include "test.h"

#include <stdlib.h>

static struct amuse_charvocab *build1(const char *text, int min_count, int max_size)
{
    struct amuse_charvocab *v = NULL;
    size_t len = strlen(text);
    if (amuse_charvocab_build(&v, &text, &len, 1, min_count, max_size, "test") != 0)
        TEST_FAIL("build: %s", amuse_last_error());
    return v;
}

TEST(ids_follow_counts_then_code_points)
{
    /* 'a' x3, 'b' x2, ' ' x2, '\n' x1, '\xe6\x98\xa5' (U+6625) x2, '\x01' never a token. */
    struct amuse_charvocab *v = build1("ab a\n\xe6\x98\xa5\x01 \xe6\x98\xa5" "ab", 1, 0);
    ASSERT_EQ_INT(amuse_charvocab_size(v), 4 + 5);
    ASSERT_EQ_INT(amuse_charvocab_id(v, 'a'), 4);
    ASSERT_EQ_INT(amuse_charvocab_id(v, ' '), 5); /* count 2, lowest code point */
    ASSERT_EQ_INT(amuse_charvocab_id(v, 'b'), 6);
    ASSERT_EQ_INT(amuse_charvocab_id(v, 0x6625), 7);
    ASSERT_EQ_INT(amuse_charvocab_id(v, '\n'), 8);
    ASSERT_EQ_INT(amuse_charvocab_id(v, 0x01), AMUSE_CHAR_UNK);
    ASSERT_EQ_INT(amuse_charvocab_id(v, 'z'), AMUSE_CHAR_UNK);
    ASSERT_EQ_INT(amuse_charvocab_id(v, 0x6626), AMUSE_CHAR_UNK);
    char s[5];
    ASSERT_EQ_INT(amuse_charvocab_text(v, 7, s), 3);
    ASSERT_STR_EQ(s, "\xe6\x98\xa5");
    ASSERT_EQ_INT(amuse_charvocab_text(v, AMUSE_CHAR_PAD, s), 0);
    ASSERT_STR_EQ(s, "");
    ASSERT_EQ_INT(amuse_charvocab_text(v, 99, s), 0);
    amuse_charvocab_free(v);

    v = build1("ab a\n\xe6\x98\xa5 \xe6\x98\xa5" "ab", 2, 0); /* drops '\n' */
    ASSERT_EQ_INT(amuse_charvocab_size(v), 8);
    ASSERT_EQ_INT(amuse_charvocab_id(v, '\n'), AMUSE_CHAR_UNK);
    amuse_charvocab_free(v);
    v = build1("ab a\n\xe6\x98\xa5 \xe6\x98\xa5" "ab", 1, 6); /* the two most frequent */
    ASSERT_EQ_INT(amuse_charvocab_size(v), 6);
    ASSERT_EQ_INT(amuse_charvocab_id(v, ' '), 5);
    ASSERT_EQ_INT(amuse_charvocab_id(v, 'b'), AMUSE_CHAR_UNK);
    amuse_charvocab_free(v);
}

TEST(several_texts_count_together_and_offsets_span_them)
{
    const char *texts[2] = {"xy", "y\xff"};
    size_t lens[2] = {2, 2};
    struct amuse_charvocab *v = (struct amuse_charvocab *)&lens;
    ASSERT_FAILS(amuse_charvocab_build(&v, texts, lens, 2, 1, 0, "poems.txt"), AMUSE_EFORMAT,
                 "poems.txt: byte 3: invalid UTF-8");
    ASSERT_TRUE(v == NULL);
    lens[1] = 1;
    ASSERT_OK(amuse_charvocab_build(&v, texts, lens, 2, 1, 0, "poems.txt"));
    ASSERT_EQ_INT(amuse_charvocab_id(v, 'y'), 4);
    amuse_charvocab_free(v);
    ASSERT_FAILS(amuse_charvocab_build(&v, texts, lens, 2, 0, 0, "poems.txt"), AMUSE_EINVAL,
                 "min_count");
    ASSERT_FAILS(amuse_charvocab_build(&v, texts, lens, 2, 1, 3, "poems.txt"), AMUSE_EINVAL,
                 "max_size");
}

TEST(json_round_trip)
{
    struct amuse_charvocab *v = build1("the cat sat \xe6\x98\xa5\n", 1, 0), *w = NULL;
    char *json = NULL;
    ASSERT_OK(amuse_charvocab_to_json(v, &json));
    ASSERT_CONTAINS(json, "\"type\":\"chars\"");
    ASSERT_CONTAINS(json, "\"reserved\":[\"<pad>\",\"<unk>\",\"<s>\",\"</s>\"]");
    ASSERT_OK(amuse_charvocab_from_json(&w, json, strlen(json), "config.json"));
    ASSERT_EQ_INT(amuse_charvocab_size(w), amuse_charvocab_size(v));
    for (int id = 0; id < amuse_charvocab_size(v); id++) {
        char a[5], b[5];
        amuse_charvocab_text(v, id, a);
        amuse_charvocab_text(w, id, b);
        ASSERT_STR_EQ(a, b);
    }
    ASSERT_EQ_INT(amuse_charvocab_id(w, 0x6625), amuse_charvocab_id(v, 0x6625));
    free(json);
    amuse_charvocab_free(v);
    amuse_charvocab_free(w);
}

TEST(json_errors_name_the_key_and_index)
{
    struct amuse_charvocab *v = NULL;
    const char *cases[][2] = {
        {"{\"type\":\"words\",\"tokens\":[]}", "\"type\" must be \"chars\""},
        {"{\"type\":\"chars\"}", "\"tokens\" must be an array"},
        {"{\"type\":\"chars\",\"tokens\":[\"a\",\"bc\"]}", "tokens[1] must be one character"},
        {"{\"type\":\"chars\",\"tokens\":[\"a\",\"\"]}", "tokens[1] must be one character"},
        {"{\"type\":\"chars\",\"tokens\":[\"a\",\"\\u0001\"]}", "tokens[1]"},
        {"{\"type\":\"chars\",\"tokens\":[\"a\",7]}", "tokens[1]"},
        {"{\"type\":\"chars\",\"tokens\":[\"a\",\"b\",\"a\"]}", "tokens[2] repeats tokens[0]"},
        {"{\"type\":\"chars\",\"reserved\":[\"<pad>\"],\"tokens\":[]}", "\"reserved\" must be"},
        {"{\"type\":\"chars\",", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = amuse_charvocab_from_json(&v, cases[i][0], strlen(cases[i][0]), "m/config.json");
        if (rc == 0 || v != NULL)
            TEST_FAIL("case %zu was accepted", i);
        ASSERT_CONTAINS(amuse_last_error(), cases[i][1]);
        ASSERT_CONTAINS(amuse_last_error(), "m/config.json");
    }
}

TEST(encode_unknown_characters_by_policy)
{
    struct amuse_charvocab *v = build1("abc", 1, 0);
    int32_t ids[8];
    size_t n, unk;
    const char *text = "a\xe6\x98\xa5" "cz";
    ASSERT_OK(amuse_charvocab_encode(v, text, strlen(text), AMUSE_UNKNOWN_AS_UNK, ids, 8, &n, &unk));
    ASSERT_EQ_INT(n, 4);
    ASSERT_EQ_INT(unk, 2);
    ASSERT_EQ_INT(ids[1], AMUSE_CHAR_UNK);
    ASSERT_EQ_INT(ids[2], amuse_charvocab_id(v, 'c'));
    ASSERT_OK(amuse_charvocab_encode(v, text, strlen(text), AMUSE_UNKNOWN_SKIP, ids, 8, &n, &unk));
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_INT(unk, 2);
    ASSERT_EQ_INT(ids[0], amuse_charvocab_id(v, 'a'));
    ASSERT_EQ_INT(ids[1], amuse_charvocab_id(v, 'c'));
    ASSERT_FAILS(amuse_charvocab_encode(v, text, strlen(text), AMUSE_UNKNOWN_FAIL, ids, 8, &n,
                                        NULL),
                 AMUSE_EINVAL, "byte 1: character U+6625 is not in the vocabulary");
    ASSERT_FAILS(amuse_charvocab_encode(v, "ab\xc3", 3, AMUSE_UNKNOWN_SKIP, ids, 8, &n, NULL),
                 AMUSE_EFORMAT, "byte 2: invalid UTF-8");
    ASSERT_FAILS(amuse_charvocab_encode(v, "abcab", 5, AMUSE_UNKNOWN_SKIP, ids, 4, &n, NULL),
                 AMUSE_ETOOBIG, "more than 4 tokens");
    ASSERT_OK(amuse_charvocab_encode(v, "", 0, AMUSE_UNKNOWN_FAIL, ids, 0, &n, NULL));
    ASSERT_EQ_INT(n, 0);
    amuse_charvocab_free(v);
}

int main(void)
{
    RUN(ids_follow_counts_then_code_points);
    RUN(several_texts_count_together_and_offsets_span_them);
    RUN(json_round_trip);
    RUN(json_errors_name_the_key_and_index);
    RUN(encode_unknown_characters_by_policy);
    return test_summary();
}
