/* text/utf8.h - UTF-8 decoding and validation with byte offsets, and a streaming tokenizer that
 * reads a file into words (or code points) without ever splitting a code point.
 * Internal (am__ prefix). Does not normalise (NFC), case-fold beyond ASCII, or segment words in
 * scripts without spaces: character mode simply makes every non-space code point a token. */
#ifndef AMUSE_TEXT_UTF8_H
#define AMUSE_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Decode one code point from s (avail bytes). Returns its length 1..4, 0 when s holds a valid but
 * incomplete prefix (more bytes needed), -1 when the bytes are not UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF included). */
int am__utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp);

/* 1 if s[0..len) is valid UTF-8; otherwise 0 and *bad_offset is the first bad byte. */
int am__utf8_valid(const char *s, size_t len, size_t *bad_offset);

/* The longest prefix of valid UTF-8 s not over max bytes that ends on a code point boundary. */
size_t am__utf8_prefix(const char *s, size_t len, size_t max);

/* White space that separates tokens: ASCII space, tab, CR, LF, VT, FF, and in character mode also
 * U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 and U+FEFF (BOM). */
int am__utf8_is_space(uint32_t cp);

enum { AM__TOKEN_EOF = 0, AM__TOKEN_WORD = 1, AM__TOKEN_EOL = 2 };

struct am__token_reader {
    FILE *f;
    const char *path;
    int chars;        /* 1: each non-space code point is a token */
    int skip_invalid; /* 1: drop tokens holding invalid UTF-8 (counted) instead of failing */
    unsigned char *buf;
    size_t len, pos;  /* bytes in buf, next byte to read */
    uint64_t base;    /* file offset of buf[0] */
    int eof;
    char word[1024 + 4 + 1]; /* AMUSE_W2V_MAX_WORD_BYTES + one code point + NUL */
    size_t word_len;
    int64_t dropped_long, dropped_invalid;
    int pending_eol;
};

/* Open path for reading. Errors: AMUSE_ENOTFOUND, AMUSE_EIO (directories included), AMUSE_ENOMEM. */
int am__token_reader_open(struct am__token_reader *r, const char *path, int chars, int skip_invalid);
void am__token_reader_close(struct am__token_reader *r);

/* Next token: AM__TOKEN_WORD (r->word, r->word_len, NUL-terminated), AM__TOKEN_EOL at each newline,
 * AM__TOKEN_EOF, or a negative status (AMUSE_EFORMAT "binary file" for a NUL byte, invalid UTF-8,
 * both with the byte offset; AMUSE_EIO). */
int am__token_next(struct am__token_reader *r);

#endif
