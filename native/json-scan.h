/*
 * A minimal JSON scanner, used by the bridge only to read its own top-level section
 * ("OrthancCloudStorage") of the merged configuration Orthanc hands to plugins. The daemon parses
 * the rest of the configuration; the bridge only needs a few strings and numbers.
 *
 * json_parse() checks a whole document once (RFC 8259 grammar: objects, arrays, strings with every
 * escape including \uXXXX surrogate pairs, numbers, true, false, null; nesting limited to
 * JSON_MAX_DEPTH). Values are then spans of that checked text: the accessors below walk them
 * without re-checking, so they must only be given values that json_parse() produced.
 */
#ifndef OCS_JSON_SCAN_H
#define OCS_JSON_SCAN_H

#include <stddef.h>

#define JSON_MAX_DEPTH 128

typedef enum {
  JSON_NULL,
  JSON_BOOLEAN,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
} json_type;

/* One value: its type and its bytes in the document, from `start` up to (not including) `end`. */
typedef struct {
  json_type type;
  const char* start;
  const char* end;
} json_value;

/* A position inside an object, for json_object_next(). */
typedef struct {
  const char* next;
  const char* end;
} json_iterator;

/*
 * Checks that `text` (`length` bytes) is exactly one JSON value, with optional white space around
 * it, and describes that value in `*out`. Returns 0, or -1 with a message ("line 3, column 7:
 * expected ':'") in `error`.
 */
int json_parse(const char* text, size_t length, json_value* out, char* error, size_t error_size);

/* "null", "a boolean", "a number", "a string", "an array", "an object": for messages. */
const char* json_type_name(json_type type);

/* Starts iterating over the members of an object value. */
void json_object_begin(const json_value* object, json_iterator* iterator);

/*
 * The next member of the object: its key decoded into a string allocated with malloc() (the caller
 * frees it; NULL when out of memory, or when the key holds a NUL character) and its value. Returns 1,
 * or 0 after the last member.
 */
int json_object_next(json_iterator* iterator, char** key, json_value* value);

/*
 * Looks a key up in an object; the last occurrence wins, as with jsoncpp. Returns 1 and sets `*out`
 * when found, 0 otherwise.
 */
int json_object_get(const json_value* object, const char* key, json_value* out);

/*
 * Decodes a string value into UTF-8, allocated with malloc() and NUL-terminated; `*length` (if not
 * NULL) receives its length, which is larger than strlen() when the string holds "\u0000". Returns
 * NULL when out of memory.
 */
char* json_string_decode(const json_value* string, size_t* length);

/*
 * Reads a number value that is a whole number written without fraction or exponent ("60", "-1"),
 * and fits in a long long. Returns 0 and sets `*out`, or -1.
 */
int json_integer(const json_value* number, long long* out);

#endif
