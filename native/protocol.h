/*
 * The wire protocol between the bridge (bridge.c) and the daemon, mirrored from its reference,
 * src/daemon/protocol.ts: keep every constant here in step with that file.
 *
 * All integers are little-endian. Headers are encoded and decoded byte by byte with the helpers
 * below (no packed structs), so the code does not depend on the host's byte order or alignment.
 *
 * Request (OCS_REQUEST_HEADER_SIZE bytes, then `size` payload bytes for CREATE, REST and JOB_STEP):
 *   offset size field
 *        0    4 magic        OCS_MAGIC ("OCS1")
 *        4    4 op           OCS_OP_*
 *        8    4 contentType  OrthancPluginContentType, as the core passes it; REST: 0
 *       12    4 reserved     0
 *       16    8 size         CREATE, REST: payload length; READ_RANGE: length asked for; else 0
 *       24    8 start        READ_RANGE: first byte; else 0
 *       32   48 uuid         ASCII, NUL-padded; REST: empty
 *
 * Response (OCS_RESPONSE_HEADER_SIZE bytes, then `size` bytes):
 *        0    4 magic        OCS_MAGIC
 *        4    4 code         OrthancPluginErrorCode (i32), 0 = success
 *        8    8 size         success: bytes of data that follow; error: bytes of a UTF-8 message
 *
 * REST payload (at most OCS_MAX_REST_PAYLOAD bytes; a "string" is a u32 length then its bytes):
 *        0    4 method        OrthancPluginHttpMethod
 *        4    4 groupCount    regular-expression groups
 *        8    4 argumentCount GET arguments (key, value pairs)
 *       12    4 headerCount   headers (key, value pairs), without "authorization" and "cookie"
 *       16    4 bodySize
 *       20    4 reserved      0
 *       24      url, then the groups, the arguments and the headers as strings, then the body
 * REST answer (the `size` bytes of a success response, at most OCS_MAX_REST_PAYLOAD):
 *        0    4 status        HTTP status
 *        4    4 typeLength
 *        8    4 allowLength   allowed methods, for a 405
 *       12    4 reserved      0
 *       16      the content type, the allowed methods, then the body up to the end
 *
 * JOB_STEP payload: the job's state (JSON text). Its answer: u32 status (OrthancPluginJobStepStatus),
 * u32 progress (millionths), then the new content and the new state as strings (empty: unchanged).
 *
 * Callback (daemon to bridge, before the answer to a REST or JOB_STEP request), 16 bytes then `size`:
 *        0    4 magic        OCS_CALLBACK_MAGIC ("OCSC")
 *        4    4 kind         OCS_CALLBACK_*
 *        8    8 size         payload bytes (at most OCS_MAX_REST_PAYLOAD)
 *   ORTHANC_REST: u32 method, string uri, then the body; SUBMIT_JOB: i32 priority, strings type, content, state
 * Its answer (bridge to daemon): "OCSC", i32 OrthancPluginErrorCode, u64 size, then the REST answer's body
 * or the job's id.
 *
 * Start-up: the daemon runs as `node <script> --bridge-version=<OCS_VERSION>`. Handshake: one line
 * on its stdout (OCS_HANDSHAKE_*). Log lines on its stderr: "I <text>", "W <text>", "E <text>". The
 * bridge writes Orthanc's merged configuration then one NUL byte to the daemon's stdin and keeps stdin
 * open: end-of-file there tells the daemon Orthanc is gone.
 */
#ifndef OCS_PROTOCOL_H
#define OCS_PROTOCOL_H

#include <stdint.h>
#include <string.h>

#define OCS_MAGIC 0x3153434fu /* "OCS1" read as a little-endian u32 */
#define OCS_REQUEST_HEADER_SIZE 80
#define OCS_RESPONSE_HEADER_SIZE 16
#define OCS_UUID_FIELD_SIZE 48

/* Op in protocol.ts */
enum {
  OCS_OP_CREATE = 1,
  OCS_OP_READ_WHOLE = 2,
  OCS_OP_READ_RANGE = 3,
  OCS_OP_REMOVE = 4,
  OCS_OP_REST = 5,
  OCS_OP_JOB_STEP = 6,
};

/* Callbacks (protocol.ts): frames the daemon sends before its answer to a REST or JOB_STEP request. */
#define OCS_CALLBACK_MAGIC 0x4353434fu /* "OCSC" */
#define OCS_CALLBACK_HEADER_SIZE 16
enum {
  OCS_CALLBACK_ORTHANC_REST = 1,
  OCS_CALLBACK_SUBMIT_JOB = 2,
};
#define OCS_JOB_STEP_ANSWER_FIXED_SIZE 8

/* REST_ROUTES in protocol.ts: the routes registered with Orthanc (Perl regular expressions). */
#define OCS_REST_ROUTES {"/cloud-storage/health", "/cloud-storage/metrics", "/cloud-storage/locate/([^/]+)", "/move-storage"}
#define OCS_MAX_REST_PAYLOAD (16u * 1024 * 1024)
#define OCS_REST_REQUEST_FIXED_SIZE 24
#define OCS_REST_ANSWER_FIXED_SIZE 16
#define OCS_BRIDGE_VERSION_FLAG "--bridge-version="
/* DAEMON_ENVIRONMENT in protocol.ts: added to the daemon's environment unless Orthanc's sets them. */
#define OCS_DAEMON_ENVIRONMENT {"MALLOC_MMAP_MAX_=0", "MALLOC_TRIM_THRESHOLD_=134217728"}

/* OrthancCode in protocol.ts: the OrthancPluginErrorCode values the daemon answers with. The bridge
 * hands every code to Orthanc as is; bridge.c checks these against OrthancCPlugin.h at compile time. */
enum {
  OCS_CODE_SUCCESS = 0,
  OCS_CODE_INTERNAL_ERROR = -1,
  OCS_CODE_NOT_ENOUGH_MEMORY = 4,
  OCS_CODE_PARAMETER_OUT_OF_RANGE = 3,
  OCS_CODE_INEXISTENT_FILE = 13,
  OCS_CODE_CANNOT_WRITE_FILE = 14,
  OCS_CODE_BAD_FILE_FORMAT = 15,
  OCS_CODE_FULL_STORAGE = 19,
  OCS_CODE_CORRUPTED_FILE = 20,
  OCS_CODE_STORAGE_AREA_PLUGIN = 32,
  OCS_CODE_BAD_RANGE = 41,
};

/* Field offsets of the request header */
#define OCS_REQ_MAGIC 0
#define OCS_REQ_OP 4
#define OCS_REQ_CONTENT_TYPE 8
#define OCS_REQ_RESERVED 12
#define OCS_REQ_SIZE 16
#define OCS_REQ_START 24
#define OCS_REQ_UUID 32

/* Field offsets of the response header */
#define OCS_RESP_MAGIC 0
#define OCS_RESP_CODE 4
#define OCS_RESP_SIZE 8

/* Field offsets of a REST payload, then of a REST answer */
#define OCS_REST_METHOD 0
#define OCS_REST_GROUP_COUNT 4
#define OCS_REST_ARGUMENT_COUNT 8
#define OCS_REST_HEADER_COUNT 12
#define OCS_REST_BODY_SIZE 16
#define OCS_REST_ANSWER_STATUS 0
#define OCS_REST_ANSWER_TYPE_LENGTH 4
#define OCS_REST_ANSWER_ALLOW_LENGTH 8

/* Handshake lines on the daemon's stdout (one of them, ended by "\n") */
#define OCS_HANDSHAKE_PREFIX "OCS "
#define OCS_HANDSHAKE_READY "OCS READY " /* "OCS READY range=<0|1> socket=<path>" */
#define OCS_HANDSHAKE_DISABLED "OCS DISABLED" /* "OCS DISABLED <reason>" */
#define OCS_HANDSHAKE_FAILED "OCS FAILED" /* "OCS FAILED <reason>" */
#define OCS_READY_RANGE_KEY "range="
#define OCS_READY_SOCKET_KEY "socket=" /* the rest of the line is the path */

/* Level prefixes of the daemon's log lines on stderr (src/log.ts) */
#define OCS_LOG_INFO 'I'
#define OCS_LOG_WARNING 'W'
#define OCS_LOG_ERROR 'E'

static inline void ocs_put_u32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static inline void ocs_put_u64(uint8_t* p, uint64_t v) {
  ocs_put_u32(p, (uint32_t)v);
  ocs_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t ocs_get_u32(const uint8_t* p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t ocs_get_u64(const uint8_t* p) {
  return (uint64_t)ocs_get_u32(p) | (uint64_t)ocs_get_u32(p + 4) << 32;
}

/* Encodes a request header; returns -1 (and encodes nothing) when the uuid does not fit its field. */
static inline int ocs_encode_request(uint8_t header[OCS_REQUEST_HEADER_SIZE], uint32_t op,
                                     uint32_t content_type, uint64_t size, uint64_t start,
                                     const char* uuid) {
  size_t uuid_length = strlen(uuid);
  if (uuid_length > OCS_UUID_FIELD_SIZE) return -1;
  memset(header, 0, OCS_REQUEST_HEADER_SIZE);
  ocs_put_u32(header + OCS_REQ_MAGIC, OCS_MAGIC);
  ocs_put_u32(header + OCS_REQ_OP, op);
  ocs_put_u32(header + OCS_REQ_CONTENT_TYPE, content_type);
  ocs_put_u64(header + OCS_REQ_SIZE, size);
  ocs_put_u64(header + OCS_REQ_START, start);
  memcpy(header + OCS_REQ_UUID, uuid, uuid_length);
  return 0;
}

/* Decodes a response header; returns -1 on a bad magic (the stream is out of step). */
static inline int ocs_decode_response(const uint8_t header[OCS_RESPONSE_HEADER_SIZE], int32_t* code,
                                      uint64_t* size) {
  if (ocs_get_u32(header + OCS_RESP_MAGIC) != OCS_MAGIC) return -1;
  *code = (int32_t)ocs_get_u32(header + OCS_RESP_CODE);
  *size = ocs_get_u64(header + OCS_RESP_SIZE);
  return 0;
}

/* Bytes a string takes in a REST payload. */
static inline uint64_t ocs_string_size(const char* text) { return 4 + (uint64_t)strlen(text); }

/* Writes a string of a REST payload at `p`; returns the byte after it. */
static inline uint8_t* ocs_put_string(uint8_t* p, const char* text) {
  size_t length = strlen(text);
  ocs_put_u32(p, (uint32_t)length);
  memcpy(p + 4, text, length);
  return p + 4 + length;
}

/* The parts of a REST answer; they point into the answer's bytes (type and allow are not NUL-ended). */
typedef struct {
  uint32_t status;
  const char* type;
  uint32_t type_length;
  const char* allow;
  uint32_t allow_length;
  const uint8_t* body;
  uint64_t body_size;
} ocs_rest_answer;

/* Decodes a REST answer of `size` bytes; returns -1 when its lengths do not fit in it. */
static inline int ocs_decode_rest_answer(const uint8_t* data, uint64_t size, ocs_rest_answer* answer) {
  if (size < OCS_REST_ANSWER_FIXED_SIZE) return -1;
  answer->status = ocs_get_u32(data + OCS_REST_ANSWER_STATUS);
  answer->type_length = ocs_get_u32(data + OCS_REST_ANSWER_TYPE_LENGTH);
  answer->allow_length = ocs_get_u32(data + OCS_REST_ANSWER_ALLOW_LENGTH);
  uint64_t used = (uint64_t)OCS_REST_ANSWER_FIXED_SIZE + answer->type_length + answer->allow_length;
  if (used > size) return -1;
  answer->type = (const char*)data + OCS_REST_ANSWER_FIXED_SIZE;
  answer->allow = answer->type + answer->type_length;
  answer->body = data + used;
  answer->body_size = size - used;
  return 0;
}

#endif
