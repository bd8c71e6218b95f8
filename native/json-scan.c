/* A minimal JSON scanner: see json-scan.h. */
#include "json-scan.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The scanner's state: the document, the current position and the first error met. */
typedef struct {
  const char* begin;
  const char* p;
  const char* end;
  const char* error_at;
  const char* error_what;
} scanner;

static int scan_value(scanner* s, json_value* out, int depth);

static int fail(scanner* s, const char* what) {
  if (s->error_what == NULL) {
    s->error_at = s->p;
    s->error_what = what;
  }
  return -1;
}

static void skip_white_space(scanner* s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/* Consumes `c` after optional white space; fails with `what` when it is not there. */
static int expect(scanner* s, char c, const char* what) {
  skip_white_space(s);
  if (s->p == s->end || *s->p != c) return fail(s, what);
  s->p++;
  return 0;
}

/* The value of 4 hexadecimal digits at p (which has at least 4 bytes), or -1. */
static long hex4(const char* p) {
  long value = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int digit = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/*
 * Reads a \uXXXX escape at s->p (just after the backslash and the 'u' was checked by the caller: s->p
 * points at the 'u'), including the low half of a surrogate pair, and returns its code point or -1.
 */
static long scan_unicode_escape(scanner* s) {
  if (s->end - s->p < 5) return fail(s, "truncated \\u escape");
  long unit = hex4(s->p + 1);
  if (unit < 0) return fail(s, "invalid \\u escape: expected 4 hexadecimal digits");
  s->p += 5;
  if (unit >= 0xDC00 && unit <= 0xDFFF) return fail(s, "invalid \\u escape: low surrogate without a high one");
  if (unit < 0xD800 || unit > 0xDBFF) return unit;
  if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u') {
    return fail(s, "invalid \\u escape: high surrogate without a low one");
  }
  long low = hex4(s->p + 2);
  if (low < 0xDC00 || low > 0xDFFF) return fail(s, "invalid \\u escape: high surrogate without a low one");
  s->p += 6;
  return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
}

/* Checks a string; s->p is at its opening quote and ends after its closing quote. */
static int scan_string(scanner* s) {
  s->p++;
  while (s->p < s->end) {
    unsigned char c = (unsigned char)*s->p;
    if (c == '"') {
      s->p++;
      return 0;
    }
    if (c < 0x20) return fail(s, "control character in a string (it must be escaped)");
    if (c != '\\') {
      s->p++;
      continue;
    }
    s->p++;
    if (s->p == s->end) break;
    if (*s->p == 'u') {
      if (scan_unicode_escape(s) < 0) return -1;
    } else if (strchr("\"\\/bfnrt", *s->p) != NULL && *s->p != '\0') {
      s->p++;
    } else {
      return fail(s, "invalid escape in a string");
    }
  }
  return fail(s, "unterminated string");
}

static void skip_digits(scanner* s) {
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
}

/* Checks a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(scanner* s) {
  if (*s->p == '-') s->p++;
  if (s->p == s->end || *s->p < '0' || *s->p > '9') return fail(s, "invalid number");
  if (*s->p == '0') {
    s->p++;
  } else {
    skip_digits(s);
  }
  if (s->p < s->end && *s->p == '.') {
    s->p++;
    if (s->p == s->end || *s->p < '0' || *s->p > '9') return fail(s, "invalid number: digits expected after '.'");
    skip_digits(s);
  }
  if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
    s->p++;
    if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
    if (s->p == s->end || *s->p < '0' || *s->p > '9') return fail(s, "invalid number: digits expected in the exponent");
    skip_digits(s);
  }
  return 0;
}

static int scan_literal(scanner* s, const char* word) {
  size_t length = strlen(word);
  if ((size_t)(s->end - s->p) < length || memcmp(s->p, word, length) != 0) return fail(s, "invalid value");
  s->p += length;
  return 0;
}

/* Checks an object or an array; s->p is at its opening bracket. */
static int scan_container(scanner* s, int is_object, int depth) {
  char close = is_object ? '}' : ']';
  s->p++;
  skip_white_space(s);
  if (s->p < s->end && *s->p == close) {
    s->p++;
    return 0;
  }
  for (;;) {
    json_value item;
    if (is_object) {
      skip_white_space(s);
      if (s->p == s->end || *s->p != '"') return fail(s, "expected a string as object key");
      if (scan_string(s) != 0 || expect(s, ':', "expected ':' after an object key") != 0) return -1;
    }
    if (scan_value(s, &item, depth + 1) != 0) return -1;
    skip_white_space(s);
    if (s->p < s->end && *s->p == ',') {
      s->p++;
      continue;
    }
    return expect(s, close, is_object ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array");
  }
}

/* Checks one value after optional white space, and describes it in *out. */
static int scan_value(scanner* s, json_value* out, int depth) {
  if (depth > JSON_MAX_DEPTH) return fail(s, "values nested too deeply");
  skip_white_space(s);
  if (s->p == s->end) return fail(s, "unexpected end of the document");
  out->start = s->p;
  int rc;
  switch (*s->p) {
    case '{':
      out->type = JSON_OBJECT;
      rc = scan_container(s, 1, depth);
      break;
    case '[':
      out->type = JSON_ARRAY;
      rc = scan_container(s, 0, depth);
      break;
    case '"':
      out->type = JSON_STRING;
      rc = scan_string(s);
      break;
    case 't':
      out->type = JSON_BOOLEAN;
      rc = scan_literal(s, "true");
      break;
    case 'f':
      out->type = JSON_BOOLEAN;
      rc = scan_literal(s, "false");
      break;
    case 'n':
      out->type = JSON_NULL;
      rc = scan_literal(s, "null");
      break;
    default:
      out->type = JSON_NUMBER;
      rc = scan_number(s);
      break;
  }
  out->end = s->p;
  return rc;
}

/* "line L, column C: what", counted in bytes from 1. */
static void describe_error(const scanner* s, char* error, size_t error_size) {
  int line = 1;
  const char* line_start = s->begin;
  for (const char* p = s->begin; p < s->error_at; p++) {
    if (*p == '\n') {
      line++;
      line_start = p + 1;
    }
  }
  snprintf(error, error_size, "line %d, column %d: %s", line, (int)(s->error_at - line_start) + 1, s->error_what);
}

int json_parse(const char* text, size_t length, json_value* out, char* error, size_t error_size) {
  scanner s = {text, text, text + length, NULL, NULL};
  if (scan_value(&s, out, 0) == 0) {
    skip_white_space(&s);
    if (s.p == s.end) return 0;
    fail(&s, "unexpected text after the value");
  }
  describe_error(&s, error, error_size);
  return -1;
}

const char* json_type_name(json_type type) {
  switch (type) {
    case JSON_NULL:
      return "null";
    case JSON_BOOLEAN:
      return "a boolean";
    case JSON_NUMBER:
      return "a number";
    case JSON_STRING:
      return "a string";
    case JSON_ARRAY:
      return "an array";
    case JSON_OBJECT:
      return "an object";
  }
  return "an unknown value";
}

void json_object_begin(const json_value* object, json_iterator* iterator) {
  iterator->next = object->start + 1; /* after '{' */
  iterator->end = object->end;
}

int json_object_next(json_iterator* iterator, char** key, json_value* value) {
  /* The text was checked by json_parse(), so scanning it again cannot fail. */
  scanner s = {iterator->next, iterator->next, iterator->end, NULL, NULL};
  skip_white_space(&s);
  if (*s.p == ',') s.p++;
  skip_white_space(&s);
  if (*s.p == '}') return 0;
  json_value key_value = {JSON_STRING, s.p, NULL};
  scan_string(&s);
  key_value.end = s.p;
  expect(&s, ':', "");
  scan_value(&s, value, 0);
  iterator->next = s.p;

  size_t length;
  *key = json_string_decode(&key_value, &length);
  if (*key != NULL && strlen(*key) != length) {
    free(*key);
    *key = NULL;
  }
  return 1;
}

int json_object_get(const json_value* object, const char* key, json_value* out) {
  json_iterator iterator;
  json_value value;
  char* name;
  int found = 0;
  json_object_begin(object, &iterator);
  while (json_object_next(&iterator, &name, &value)) {
    if (name != NULL && strcmp(name, key) == 0) {
      *out = value;
      found = 1;
    }
    free(name);
  }
  return found;
}

/* Appends the UTF-8 encoding of a code point (at most 0x10FFFF) and returns the new end. */
static char* put_utf8(char* out, unsigned long code_point) {
  if (code_point < 0x80) {
    *out++ = (char)code_point;
  } else if (code_point < 0x800) {
    *out++ = (char)(0xC0 | code_point >> 6);
    *out++ = (char)(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    *out++ = (char)(0xE0 | code_point >> 12);
    *out++ = (char)(0x80 | (code_point >> 6 & 0x3F));
    *out++ = (char)(0x80 | (code_point & 0x3F));
  } else {
    *out++ = (char)(0xF0 | code_point >> 18);
    *out++ = (char)(0x80 | (code_point >> 12 & 0x3F));
    *out++ = (char)(0x80 | (code_point >> 6 & 0x3F));
    *out++ = (char)(0x80 | (code_point & 0x3F));
  }
  return out;
}

char* json_string_decode(const json_value* string, size_t* length) {
  /* Decoding never makes a string longer: an escape takes at least as many bytes as its UTF-8. */
  char* decoded = malloc((size_t)(string->end - string->start) + 1);
  if (decoded == NULL) return NULL;
  scanner s = {string->start, string->start + 1, string->end - 1, NULL, NULL}; /* inside the quotes */
  char* out = decoded;
  while (s.p < s.end) {
    if (*s.p != '\\') {
      *out++ = *s.p++;
      continue;
    }
    s.p++;
    switch (*s.p) {
      case 'b':
        *out++ = '\b';
        break;
      case 'f':
        *out++ = '\f';
        break;
      case 'n':
        *out++ = '\n';
        break;
      case 'r':
        *out++ = '\r';
        break;
      case 't':
        *out++ = '\t';
        break;
      case 'u':
        out = put_utf8(out, (unsigned long)scan_unicode_escape(&s));
        continue; /* scan_unicode_escape() moved past the escape */
      default: /* '"', '\\' or '/' */
        *out++ = *s.p;
        break;
    }
    s.p++;
  }
  *out = '\0';
  if (length != NULL) *length = (size_t)(out - decoded);
  return decoded;
}

int json_integer(const json_value* number, long long* out) {
  const char* p = number->start;
  int negative = *p == '-';
  if (negative) p++;
  long long value = 0;
  for (; p < number->end; p++) {
    if (*p < '0' || *p > '9') return -1; /* a fraction or an exponent */
    int digit = *p - '0';
    if (value > (LLONG_MAX - digit) / 10) return -1;
    value = value * 10 + digit;
  }
  *out = negative ? -value : value;
  return 0;
}
