/*
 * What bridge.c shares with the other files of the plugin (jobs.c): its Orthanc context, its log, its
 * socket I/O and the one function that sends a request to the daemon. Nothing here is exported from the
 * library (-fvisibility=hidden).
 */
#ifndef OCS_BRIDGE_INTERNAL_H
#define OCS_BRIDGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <orthanc/OrthancCPlugin.h>

#define PLUGIN_NAME "orthanc-cloud-storage"

typedef enum { LOG_INFO, LOG_WARNING, LOG_ERROR } log_level;

/* The bytes of a REST or JOB_STEP answer, malloc()ed by the exchange. */
typedef struct {
  uint8_t* data;
  uint64_t size;
} rest_answer;

/* One storage call, one HTTP request forwarded, or one job step. */
typedef struct {
  uint32_t op;
  const char* verb; /* for messages: "create", "read"... */
  const char* uuid; /* REST, JOB_STEP: "" */
  OrthancPluginContentType type;
  const void* payload;                  /* create, REST, JOB_STEP */
  uint64_t size;                        /* create, REST, JOB_STEP: payload size; read range: length */
  uint64_t start;                       /* read range */
  OrthancPluginMemoryBuffer64* target;  /* read whole: allocated here; read range: Orthanc's */
  const char* http;                     /* REST: "GET /cloud-storage/health"; JOB_STEP: "a step of job X" */
  rest_answer* answer;                  /* REST, JOB_STEP */
  int no_retry;                         /* REST other than GET: a broken connection is not retried */
} request;

#define IO_EOF (-1)
#define CALLBACK_MALFORMED (-2)

extern OrthancPluginContext* g_context;

__attribute__((format(printf, 2, 3))) void log_message(log_level level, const char* format, ...);

/* Sends every byte; returns 0, or an errno value (EAGAIN when SO_SNDTIMEO expired). */
int send_all(int fd, const void* data, uint64_t size);

/* Receives exactly `size` bytes, counted in `*received`; returns 0, IO_EOF, or an errno value. */
int recv_all(int fd, void* data, uint64_t size, uint64_t* received);

/* Sends a request to the daemon and returns its answer (bridge.c). */
OrthancPluginErrorCode call_daemon(const request* rq, int* answered);

/*
 * jobs.c: serves one callback from the daemon (protocol.h) whose 16-byte header was just read on `fd`:
 * reads its payload, calls Orthanc, writes the answer. Returns 0, an errno value or IO_EOF (the connection
 * failed), or CALLBACK_MALFORMED with the cause in `cause`.
 */
int serve_callback(int fd, const uint8_t* header, char* cause, size_t cause_size);

/* jobs.c: registers the unserializer of the daemon's jobs, so that jobs Orthanc saved run again. */
void register_job_unserializer(void);

#endif
