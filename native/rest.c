/*
 * The daemon's REST routes, its jobs, and its calls into Orthanc (protocol.ts draws every payload). A request
 * on a route is forwarded as is, on Orthanc's thread (registered without Orthanc's lock). A job holds the opaque
 * JSON texts the daemon gave it and sends its state with each step (JOB_STEP): the daemon keeps nothing between
 * steps, and Orthanc can store the job and run it again after a restart (JOB_RESTORE). While a REST request or a
 * step waits for its answer, the daemon may call Orthanc's REST API or submit a job (callbacks, served here).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

static const char* const METHODS[] = {"?", "GET", "POST", "PUT", "DELETE"};
static pthread_mutex_t g_jobs_lock = PTHREAD_MUTEX_INITIALIZER; /* Orthanc reads jobs from other threads */
static __thread char* t_handed; /* the text last handed to Orthanc by this thread: valid until its next call */

typedef struct {
  char *type, *content, *state;
  float progress;
} daemon_job;

/* Points `out` at `count` strings from `at` (the buffer ends with a NUL of the bridge's: see connection.c);
 * returns the offset after them, or -1 when they do not fit. */
static int64_t strings(const reply* r, uint64_t at, char** out, int count) {
  for (int i = 0; i < count; i++) {
    if (at >= r->size) return -1;
    out[i] = (char*)r->data + at, at += strlen(out[i]) + 1;
  }
  return at <= r->size ? (int64_t)at : -1;
}

/* ---- Jobs ---- */

static const char* hand_over(char* text) {
  free(t_handed);
  return t_handed = text;
}

static void job_finalize(void* p) {
  daemon_job* job = p;
  free(job->type), free(job->content), free(job->state), free(job);
}

static float job_progress(void* p) {
  pthread_mutex_lock(&g_jobs_lock);
  float progress = ((daemon_job*)p)->progress;
  pthread_mutex_unlock(&g_jobs_lock);
  return progress;
}

static const char* job_content(void* p) {
  pthread_mutex_lock(&g_jobs_lock);
  char* copy = strdup(((daemon_job*)p)->content);
  pthread_mutex_unlock(&g_jobs_lock);
  return hand_over(copy);
}

/* The texts are the daemon's JSON: written in, never read. NULL: Orthanc does not store the job. */
static const char* job_serialized(void* p) {
  daemon_job* job = p;
  char* text;
  pthread_mutex_lock(&g_jobs_lock);
  int ok = asprintf(&text, "{\"Format\":\"" OCS_SERIALIZED_JOB_FORMAT "\",\"Content\":%s,\"State\":%s}", job->content,
                    job->state) >= 0;
  pthread_mutex_unlock(&g_jobs_lock);
  return hand_over(ok ? text : NULL);
}

static OrthancPluginErrorCode job_stop(void* p, OrthancPluginJobStopReason reason) {
  (void)p, (void)reason; /* a step is short (the daemon returns after about a second): nothing runs between */
  return OrthancPluginErrorCode_Success;
}

/* The daemon starts the job over at its next step: it knows how a job starts (protocol.ts, JOB_STEP). */
static OrthancPluginErrorCode job_reset(void* p) {
  daemon_job* job = p;
  char* state;
  pthread_mutex_lock(&g_jobs_lock);
  int ok = asprintf(&state, "{\"" OCS_JOB_START_OVER_KEY "\":%s}", job->state) >= 0;
  if (ok) free(job->state), job->state = state, job->progress = 0;
  pthread_mutex_unlock(&g_jobs_lock);
  return ok ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_NotEnoughMemory;
}

static int serve_callback(int fd, const uint8_t* header, char* cause, size_t cause_size);

static OrthancPluginJobStepStatus job_step(void* p) {
  daemon_job* job = p;
  char what[128], *texts[2];
  pthread_mutex_lock(&g_jobs_lock);
  char* state = strdup(job->state);
  pthread_mutex_unlock(&g_jobs_lock);
  snprintf(what, sizeof what, "a step of job %s", job->type);
  reply answer = {NULL, 0};
  request rq = {.op = OCS_OP_JOB_STEP, .verb = "run", .uuid = "", .payload = state, .size = state ? strlen(state) : 0,
                .what = what, .answer = &answer, .serve = serve_callback};
  if (state == NULL || call_daemon(&rq, NULL) != OrthancPluginErrorCode_Success) return free(state), OrthancPluginJobStepStatus_Failure;
  uint32_t status = answer.size >= OCS_JOB_STEP_ANSWER_FIXED_SIZE ? ocs_get_u32(answer.data + OCS_JOB_STEP_STATUS) : 0;
  uint32_t progress = status != 0 ? ocs_get_u32(answer.data + OCS_JOB_STEP_PROGRESS) : 0;
  int ok = status >= OrthancPluginJobStepStatus_Success && status <= OrthancPluginJobStepStatus_Continue &&
           strings(&answer, OCS_JOB_STEP_ANSWER_FIXED_SIZE, texts, 2) == (int64_t)answer.size;
  char* content = ok && texts[0][0] != '\0' ? strdup(texts[0]) : NULL; /* empty: kept */
  char* next = ok && texts[1][0] != '\0' ? strdup(texts[1]) : NULL;
  pthread_mutex_lock(&g_jobs_lock);
  if (content != NULL) free(job->content), job->content = content;
  if (next != NULL) free(job->state), job->state = next;
  if (ok) job->progress = progress > OCS_PROGRESS_SCALE ? 1.0f : (float)progress / OCS_PROGRESS_SCALE;
  pthread_mutex_unlock(&g_jobs_lock);
  if (!ok) log_message(LOG_ERROR, "%s: protocol error: a malformed answer of %llu bytes", what, (unsigned long long)answer.size);
  free(state), free(answer.data);
  return ok ? (OrthancPluginJobStepStatus)status : OrthancPluginJobStepStatus_Failure;
}

/* A job of the daemon's (copies of its texts), ready to submit; NULL when memory is short. */
static OrthancPluginJob* create_job(const char* type, const char* content, const char* state) {
  daemon_job* job = calloc(1, sizeof *job);
  OrthancPluginJob* created = NULL;
  if (job != NULL) *job = (daemon_job){strdup(type), strdup(content), strdup(state), 0};
  if (job != NULL && job->type != NULL && job->content != NULL && job->state != NULL) {
    created = OrthancPluginCreateJob(g_context, job, job_finalize, job->type, job_progress, job_content, job_serialized,
                                     job_step, job_stop, job_reset);
  }
  if (created == NULL && job != NULL) job_finalize(job);
  return created;
}

/* Orthanc calls this at start-up for each job it stored: the daemon says whether it is one of ours (then its
 * content and state) or not (an empty answer). */
static OrthancPluginJob* unserialize_job(const char* type, const char* serialized) {
  char what[128], *texts[2], *payload = NULL;
  snprintf(what, sizeof what, "a stored %s job", type);
  int size = asprintf(&payload, "%s%c%s", type, '\0', serialized);
  reply answer = {NULL, 0};
  request rq = {.op = OCS_OP_JOB_RESTORE, .verb = "restore", .uuid = "", .payload = payload, .size = (uint64_t)size,
                .what = what, .answer = &answer};
  OrthancPluginJob* job = NULL;
  if (size >= 0 && call_daemon(&rq, NULL) == OrthancPluginErrorCode_Success && answer.size > 0) {
    if (strings(&answer, 0, texts, 2) == (int64_t)answer.size) job = create_job(type, texts[0], texts[1]);
    if (job == NULL) log_message(LOG_ERROR, "cannot restore %s: a malformed answer, or memory is short", what);
  }
  free(size >= 0 ? payload : NULL), free(answer.data);
  return job;
}

/* ---- Callbacks ---- */

/* Serves one callback whose header was just read on `fd`: reads its payload, calls Orthanc, answers (a header
 * like a response's, with the callback magic, then the answer's bytes). 0, an errno value, or CALLBACK_MALFORMED. */
static int serve_callback(int fd, const uint8_t* header, char* cause, size_t cause_size) {
  uint32_t kind = ocs_get_u32(header + OCS_RESP_CODE), word = 0;
  uint64_t received;
  reply payload = {NULL, ocs_get_u64(header + OCS_RESP_SIZE)};
  uint64_t most = kind == OCS_CALLBACK_ADOPT ? OCS_MAX_CREATE_SIZE : OCS_MAX_REST_PAYLOAD; /* adopt: a DICOM file */
  int error = payload.size <= most && (payload.data = malloc(payload.size + 1)) != NULL
                  ? recv_all(fd, payload.data, payload.size, &received) : CALLBACK_MALFORMED;
  char* texts[3] = {NULL};
  int64_t end = -1;
  if (error == 0 && payload.size >= 4) {
    payload.data[payload.size] = '\0';
    word = ocs_get_u32(payload.data); /* ORTHANC_REST: the method; SUBMIT_JOB: the priority */
    end = strings(&payload, 4, texts, kind == OCS_CALLBACK_SUBMIT_JOB ? 3 : 1);
  }
  OrthancPluginMemoryBuffer answer = {NULL, 0};
  OrthancPluginErrorCode code = OrthancPluginErrorCode_InternalError;
  char* id = NULL;
  if (end >= 0 && kind == OCS_CALLBACK_ORTHANC_REST && word >= 1 && word <= 4) {
    const char *uri = texts[0], *body = (char*)payload.data + end;
    uint32_t length = (uint32_t)(payload.size - (uint64_t)end);
    code = word == OrthancPluginHttpMethod_Get    ? OrthancPluginRestApiGet(g_context, &answer, uri)
           : word == OrthancPluginHttpMethod_Post ? OrthancPluginRestApiPost(g_context, &answer, uri, body, length)
           : word == OrthancPluginHttpMethod_Put  ? OrthancPluginRestApiPut(g_context, &answer, uri, body, length)
                                                  : OrthancPluginRestApiDelete(g_context, uri);
    if (code != OrthancPluginErrorCode_Success && code != OrthancPluginErrorCode_UnknownResource)
      log_message(LOG_WARNING, "the daemon's call %s %s failed inside Orthanc: error %d", METHODS[word], uri, (int)code);
  } else if (end == (int64_t)payload.size && kind == OCS_CALLBACK_SUBMIT_JOB) {
    OrthancPluginJob* job = create_job(texts[0], texts[1], texts[2]);
    if (job == NULL || (id = OrthancPluginSubmitJob(g_context, job, (int32_t)word)) == NULL)
      log_message(LOG_ERROR, "cannot submit a %s job to Orthanc's job engine", texts[0]);
    code = id != NULL ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_InternalError;
  } else if (end >= 0 && kind == OCS_CALLBACK_ATTACHMENT_RECORD) { /* Orthanc >= 1.12.8; word 1: set it to the rest */
    code = word ? OrthancPluginSetAttachmentCustomData(g_context, texts[0], payload.data + end, (uint32_t)(payload.size - end))
                : OrthancPluginGetAttachmentCustomData(g_context, &answer, texts[0]);
  } else if (payload.size >= 4 && kind == OCS_CALLBACK_ADOPT && payload.size - 4 >= word) { /* word: the record's size */
    OrthancPluginMemoryBuffer ids[2] = {{NULL, 0}, {NULL, 0}};
    uint32_t status = OrthancPluginStoreStatus_Failure;
    code = OrthancPluginAdoptDicomInstance(g_context, &ids[0], &ids[1], (OrthancPluginStoreStatus*)&status,
                                           payload.data + 4 + word, payload.size - 4 - word, payload.data + 4, word);
    if (code == 0 && OrthancPluginCreateMemoryBuffer(g_context, &answer, 6 + ids[0].size + ids[1].size) == 0) {
      uint8_t* at = answer.data; /* u32 status, the instance's id, the attachment's uuid: protocol.ts */
      ocs_put_u32(at, status), memcpy(at + 4, ids[0].data, ids[0].size), at[4 + ids[0].size] = '\0';
      memcpy(at + 5 + ids[0].size, ids[1].data, ids[1].size), at[5 + ids[0].size + ids[1].size] = '\0';
    } else if (code == 0) code = OrthancPluginErrorCode_NotEnoughMemory;
    for (int i = 0; i < 2; i++) if (ids[i].data != NULL) OrthancPluginFreeMemoryBuffer(g_context, &ids[i]);
  } else if (error == 0 || error == CALLBACK_MALFORMED) {
    error = CALLBACK_MALFORMED;
    snprintf(cause, cause_size, "protocol error: a malformed callback (kind %u, %llu bytes)", kind,
             (unsigned long long)payload.size);
  }
  uint64_t size = id != NULL ? strlen(id) : code == OrthancPluginErrorCode_Success ? answer.size : 0;
  uint8_t answer_header[OCS_CALLBACK_HEADER_SIZE];
  ocs_put_u32(answer_header + OCS_RESP_MAGIC, OCS_CALLBACK_MAGIC);
  ocs_put_u32(answer_header + OCS_RESP_CODE, (uint32_t)code);
  ocs_put_u64(answer_header + OCS_RESP_SIZE, size);
  if (error == 0) error = send_all(fd, answer_header, sizeof answer_header);
  if (error == 0) error = send_all(fd, id != NULL ? (const void*)id : answer.data, size);
  if (answer.data != NULL) OrthancPluginFreeMemoryBuffer(g_context, &answer);
  if (id != NULL) OrthancPluginFreeString(g_context, id);
  free(payload.data);
  return error;
}

/* ---- REST routes ---- */

/* An HTTP request as a REST payload; -1 when memory is short. The client's credentials (authorization,
 * cookie) stay in Orthanc, which has already checked them. */
static int encode_rest_request(const char* url, const OrthancPluginHttpRequest* http, reply* payload) {
  FILE* f = open_memstream((char**)&payload->data, &payload->size);
  uint32_t headers = 0, fixed[] = {http->method, http->groupsCount, http->getCount, 0, http->bodySize, 0};
  uint8_t bytes[sizeof fixed];
  if (f == NULL) return -1;
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) ocs_put_u32(bytes + 4 * i, fixed[i]);
  fwrite(bytes, sizeof bytes, 1, f), fprintf(f, "%s%c", url, 0);
  for (uint32_t i = 0; i < http->groupsCount; i++) fprintf(f, "%s%c", http->groups[i], 0);
  for (uint32_t i = 0; i < http->getCount; i++) fprintf(f, "%s%c%s%c", http->getKeys[i], 0, http->getValues[i], 0);
  for (uint32_t i = 0; i < http->headersCount; i++) {
    if (strcmp(http->headersKeys[i], "authorization") == 0 || strcmp(http->headersKeys[i], "cookie") == 0) continue;
    fprintf(f, "%s%c%s%c", http->headersKeys[i], 0, http->headersValues[i], 0), headers++;
  }
  fwrite(http->body, 1, http->bodySize, f);
  if (fclose(f) != 0) return free(payload->data), payload->data = NULL, -1;
  ocs_put_u32(payload->data + OCS_REST_HEADER_COUNT, headers);
  return 0;
}

static void send_text_status(OrthancPluginRestOutput* output, uint16_t status, const char* text) {
  OrthancPluginSetHttpHeader(g_context, output, "Content-Type", "text/plain; charset=utf-8");
  OrthancPluginSendHttpStatus(g_context, output, status, text, (uint32_t)strlen(text));
}

/* Hands the daemon's answer to Orthanc: 200 as a buffer of its content type, 405 with the allowed methods in
 * that field, any other with its status. */
static OrthancPluginErrorCode send_rest_answer(OrthancPluginRestOutput* output, const char* what, const reply* r) {
  uint32_t status = r->size >= OCS_REST_ANSWER_FIXED_SIZE ? ocs_get_u32(r->data + OCS_REST_ANSWER_STATUS) : 0;
  const char *text = (const char*)r->data + OCS_REST_ANSWER_TEXT, *body = (const char*)r->data + OCS_REST_ANSWER_FIXED_SIZE;
  uint32_t length = (uint32_t)(r->size - OCS_REST_ANSWER_FIXED_SIZE);
  if (status < 100 || status > 599 || r->data[OCS_REST_ANSWER_FIXED_SIZE - 1] != '\0') {
    log_message(LOG_ERROR, "cannot forward %s: protocol error: a malformed REST answer of %llu bytes", what,
                (unsigned long long)r->size);
    return OrthancPluginErrorCode_Plugin;
  }
  if (status == 200) OrthancPluginAnswerBuffer(g_context, output, body, length, text);
  else if (status == 405) OrthancPluginSendMethodNotAllowed(g_context, output, text);
  else {
    if (text[0] != '\0') OrthancPluginSetHttpHeader(g_context, output, "Content-Type", text);
    OrthancPluginSendHttpStatus(g_context, output, (uint16_t)status, body, length);
  }
  return OrthancPluginErrorCode_Success;
}

/* The callback of every route in REST_ROUTES: forwards the request to the daemon and its answer back. */
static OrthancPluginErrorCode rest_forward(OrthancPluginRestOutput* output, const char* url,
                                           const OrthancPluginHttpRequest* http) {
  char what[512];
  snprintf(what, sizeof what, "%s %s", METHODS[(unsigned)http->method < 5 ? http->method : 0], url);
  reply payload = {NULL, 0}, answer = {NULL, 0};
  if (encode_rest_request(url, http, &payload) != 0) return OrthancPluginErrorCode_NotEnoughMemory;
  request rq = {.op = OCS_OP_REST, .verb = "forward", .uuid = "", .payload = payload.data, .size = payload.size,
                .what = what, .answer = &answer, .serve = serve_callback, .no_retry = http->method != OrthancPluginHttpMethod_Get};
  int answered = 1;
  OrthancPluginErrorCode code = payload.size <= OCS_MAX_REST_PAYLOAD ? call_daemon(&rq, &answered) : OrthancPluginErrorCode_Success;
  if (payload.size > OCS_MAX_REST_PAYLOAD) send_text_status(output, 413, PLUGIN_NAME ": the request is too large\n");
  else if (code == OrthancPluginErrorCode_Success) code = send_rest_answer(output, what, &answer);
  else if (!answered) {
    /* A load balancer's probe must fail: 503, with the cause in Orthanc's log (call_daemon logged it). */
    send_text_status(output, 503, PLUGIN_NAME ": the daemon is unreachable; Orthanc's log says why\n");
    code = OrthancPluginErrorCode_Success;
  }
  free(payload.data), free(answer.data);
  return code;
}

/* ---- The clock ---- */

/* Every OCS_TICK_INTERVAL_S seconds, a REST request of the bridge's own (POST OCS_TIER_TICK_PATH, never registered
 * with Orthanc) with its callbacks served: the daemon decides what is due (TierSchedule). Only the clock here. */
static pthread_t g_ticker;
static int g_ticker_started;

static void* tick(void* unused) {
  OrthancPluginHttpRequest http = {.method = OrthancPluginHttpMethod_Post, .body = ""};
  for (int i = 1; !is_stopping(); i++) {
    sleep_ms(100);
    reply payload = {NULL, 0}, answer = {NULL, 0};
    if (i % (OCS_TICK_INTERVAL_S * 10) != 0 || encode_rest_request(OCS_TIER_TICK_PATH, &http, &payload) != 0) continue;
    request rq = {.op = OCS_OP_REST, .verb = "forward", .uuid = "", .payload = payload.data, .size = payload.size,
                  .what = "the clock's tick", .answer = &answer, .serve = serve_callback, .no_retry = 1};
    call_daemon(&rq, NULL); /* logs its failures; the next tick comes anyway */
    free(payload.data), free(answer.data);
  }
  return (void)unused, NULL;
}

void rest_ticker_start(void) {
  g_ticker_started = pthread_create(&g_ticker, NULL, tick, NULL) == 0;
  if (!g_ticker_started) log_message(LOG_ERROR, "cannot create the clock's thread: TierSchedule will not run");
}

void rest_ticker_stop(void) {
  if (g_ticker_started) pthread_join(g_ticker, NULL);
  g_ticker_started = 0;
}

void rest_register(void) {
  static const char* const routes[] = OCS_REST_ROUTES;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    OrthancPluginRegisterRestCallbackNoLock(g_context, routes[i], rest_forward);
  }
  OrthancPluginRegisterJobsUnserializer(g_context, unserialize_job);
}
