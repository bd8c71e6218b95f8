/*
 * The bridge's files and what each offers the ones above it. Calls run one way, down this list:
 *   plugin.c      Orthanc's entry points: reads what is needed before the daemon exists, registers
 *   storage.c     the storage area's callbacks          \
 *   rest.c        the REST routes, the jobs, callbacks   } each forwards calls through connection.c
 *   supervisor.c  the daemon process: spawn, handshake, lifeline, log forwarding, restart
 *   connection.c  one socket per Orthanc thread: framing, send/receive, one retry
 *   util.c        Orthanc's context, its log, the clock, the stop signal
 * Nothing here is exported from the library (-fvisibility=hidden).
 */
#ifndef OCS_BRIDGE_H
#define OCS_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include <orthanc/OrthancCPlugin.h>

#include "protocol.h" /* generated from src/daemon/protocol.ts at build time */

#define PLUGIN_NAME "orthanc-cloud-storage"
#define SECTION "OrthancCloudStorage"

/* The frames' integers are little-endian, written byte by byte: no dependence on the host's order. */
static inline void ocs_put_u32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static inline void ocs_put_u64(uint8_t* p, uint64_t v) { ocs_put_u32(p, (uint32_t)v), ocs_put_u32(p + 4, v >> 32); }
static inline uint32_t ocs_get_u32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static inline uint64_t ocs_get_u64(const uint8_t* p) { return ocs_get_u32(p) | (uint64_t)ocs_get_u32(p + 4) << 32; }

/* util.c */
typedef enum { LOG_INFO, LOG_WARNING, LOG_ERROR } log_level;
extern OrthancPluginContext* g_context;
void log_text(log_level level, const char* prefix, const char* text);
__attribute__((format(printf, 2, 3))) void log_message(log_level level, const char* format, ...);
const char* error_text(int error);
int64_t now_ms(void);
void sleep_ms(int64_t ms);
void close_fd(int* fd);
int make_pipe(int ends[2]); /* close-on-exec, both ends above 2 */
int stop_init(void);        /* 0, or -1 with errno */
int stop_fd(void);          /* readable once Orthanc is stopping */
int is_stopping(void);
void announce_stop(void);
void stop_release(void);

/* connection.c */
#define IO_EOF (-1)
#define CALLBACK_MALFORMED (-2)
/* Serves one callback frame whose header was just read (rest.c): 0, an errno value, IO_EOF or CALLBACK_MALFORMED. */
typedef int (*callback_server)(int fd, const uint8_t* header, char* cause, size_t cause_size);
typedef struct {
  uint8_t* data; /* malloc()ed */
  uint64_t size;
} reply;
typedef struct {
  uint32_t op;
  const char* verb; /* for messages: "create", "read"... */
  const char* uuid; /* "" but for storage calls */
  OrthancPluginContentType type;
  const void* payload;                 /* create, REST, JOB_STEP, JOB_RESTORE */
  uint64_t size, start;                /* the payload's size; read range: its length and start */
  OrthancPluginMemoryBuffer64* target; /* read whole: allocated here; read range: Orthanc's */
  const char* what;                    /* REST, jobs: "GET /cloud-storage/health", "a step of job X" */
  reply* answer;                       /* REST, jobs */
  callback_server serve;               /* REST, JOB_STEP: callbacks are served by it; else refused */
  int no_retry;                        /* a broken connection is not retried (not idempotent) */
} request;
int connection_init(void);
void connection_release(void);
void connection_publish(const char* socket_path, int request_timeout_s, int connect_timeout_s);
void connection_daemon_exited(void);
int send_all(int fd, const void* data, uint64_t size);                  /* 0 or an errno value */
int recv_all(int fd, void* data, uint64_t size, uint64_t* received);    /* 0, IO_EOF or an errno value */
OrthancPluginErrorCode call_daemon(const request* rq, int* answered); /* logs its failures */

/* supervisor.c */
typedef struct {
  char *node, *daemon_script; /* node: a path, or a name looked up in PATH */
  const char* node_origin;    /* for the log: "OrthancCloudStorage.Node", "the bundled runtime"... */
  int startup_timeout_s;
  char* configuration; /* Orthanc's merged configuration, given to every daemon */
} daemon_settings;
typedef enum { OUTCOME_FAILED = 0, OUTCOME_READY, OUTCOME_DISABLED } outcome;
/* Starts the daemon, waits for its handshake: READY (`*range` set, the connection published), DISABLED or
 * FAILED, `reason` saying why. */
outcome supervisor_start(daemon_settings* settings, int* range, char* reason, size_t reason_size);
int supervisor_watch(void); /* after READY: restart the daemon whenever it ends; 0, or -1 after logging */
void supervisor_stop(void); /* once announce_stop() was called */

/* storage.c */
void storage_register(int range);

/* rest.c */
void rest_register(void);
void rest_ticker_start(void); /* the clock: POST OCS_TIER_TICK_PATH every OCS_TICK_INTERVAL_S seconds */
void rest_ticker_stop(void);  /* once announce_stop() was called */

#endif
