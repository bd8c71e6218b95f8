/*
 * The bridge's files, calls running down this list (design: docs/bridge.md#files):
 *   plugin.c      Orthanc's entry points
 *   storage.c     the storage area's callbacks
 *   rest.c        the REST routes, jobs, callbacks, clock
 *   supervisor.c  the supervisor process: spawned, its lines read, respawned
 *   connection.c  one socket per Orthanc thread: framing, callbacks' frames, one retry
 *   util.c        Orthanc's context, its log, the stop flag
 */
#ifndef OCS_BRIDGE_H
#define OCS_BRIDGE_H
#define _GNU_SOURCE /* every file includes this header first */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#define ORTHANC_PLUGIN_DEPRECATED /* Orthanc 1.13.0's header: 1.10.1's functions it marks so are still used */
#include <orthanc/OrthancCPlugin.h>
#include "protocol.h" /* generated from src/daemon/protocol.ts at build time */

#define PLUGIN_NAME "orthanc-cloud-storage"
#ifndef OCS_VERSION
#define OCS_VERSION "0.1.0" /* scripts/build-native.sh sets package.json's */
#endif
/* Little-endian, byte by byte: no dependence on the host's order. */
static inline void ocs_put_u32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static inline void ocs_put_u64(uint8_t* p, uint64_t v) { ocs_put_u32(p, (uint32_t)v), ocs_put_u32(p + 4, v >> 32); }
static inline uint32_t ocs_get_u32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static inline uint64_t ocs_get_u64(const uint8_t* p) { return ocs_get_u32(p) | (uint64_t)ocs_get_u32(p + 4) << 32; }
/* strerrordesc_np() is thread-safe, unlike strerror(). */
static inline const char* error_text(int error) { const char* text = strerrordesc_np(error); return text ? text : "unknown error"; }
static inline void close_fd(int* fd) { if (*fd >= 0) close(*fd); *fd = -1; }
static inline int64_t now_ms(void) {
  struct timespec now;
  return clock_gettime(CLOCK_MONOTONIC, &now), (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}
static inline void sleep_ms(int64_t ms) {
  struct timespec left = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&left, &left) != 0 && errno == EINTR) continue;
}

/* util.c */
typedef enum { LOG_INFO, LOG_WARNING, LOG_ERROR } log_level;
extern OrthancPluginContext* g_context;
extern int g_stopping; /* 1 once Orthanc is stopping: read and written with __atomic */
__attribute__((format(printf, 3, 4))) void log_line(log_level level, const char* prefix, const char* format, ...);
#define log_message(level, ...) log_line(level, PLUGIN_NAME ": ", __VA_ARGS__)
#define is_stopping() __atomic_load_n(&g_stopping, __ATOMIC_ACQUIRE)

/* connection.c */
#define IO_EOF (-1)
#define CALLBACK_MALFORMED (-2) /* no OrthancPluginErrorCode: a callback that cannot be served */
typedef struct {
  uint32_t op;
  const char *verb, *uuid; /* for messages: "create", "read"...; uuid: "" but for storage calls */
  OrthancPluginContentType type;
  const void* payload;                 /* create, REST, JOB_STEP, JOB_RESTORE */
  uint64_t size, start;                /* the payload's size; read range: its length and start */
  uint16_t flags;                      /* CREATE: CreateFlag bits (protocol.ts); the bridge adds FILE_ANSWER */
  uint32_t record;                     /* the size of record_data, the attachment's custom data */
  const void* record_data;             /* READ_RANGE, REMOVE */
  OrthancPluginMemoryBuffer64* target; /* read whole: allocated here; read range: Orthanc's */
  const char* what;                    /* REST, jobs: "GET /cloud-storage/health", "a step of job X" */
  OrthancPluginMemoryBuffer* answer;   /* create's record, REST, jobs: allocated here */
  /* REST, jobs: serves a callback (payload NUL-ended) into `answer`; Orthanc's code or CALLBACK_MALFORMED */
  OrthancPluginErrorCode (*serve)(uint32_t kind, uint8_t* payload, uint64_t size, OrthancPluginMemoryBuffer* answer);
  int no_retry; /* not idempotent: a broken connection is not retried */
} request;
int connection_init(void);
void connection_release(void);
void connection_publish(const char* socket_path, int request_timeout_s, int connect_timeout_s);
int send_all(int fd, const void* data, uint64_t size); /* 0 or an errno value */
OrthancPluginErrorCode call_daemon(const request* rq, int* answered); /* logs its failures */

/* supervisor.c */
typedef enum { OUTCOME_FAILED = 0, OUTCOME_READY, OUTCOME_DISABLED } outcome;
/* Starts the supervisor and awaits the handshake (docs/bridge.md#start-up-the-handshake-and-its-deadlines). */
outcome supervisor_start(const char* node, const char* script, const char* configuration, int* features, char* reason,
                         size_t reason_size);
void supervisor_stop(void); /* once Orthanc is stopping */
enum { FEATURE_RANGE = 1, FEATURE_CUSTOM_DATA = 2, FEATURE_TYPE_STATUS = 4 }; /* the READY line's (protocol.ts) */

/* storage.c */
void storage_register(int features);

/* rest.c */
void rest_register(int features); /* and starts the clock */
void rest_stop(void);             /* the clock, once Orthanc is stopping */

#endif
