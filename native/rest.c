/*
 * The daemon's REST routes, its jobs, and its calls into Orthanc. Each HTTP request on a route is forwarded
 * as is (Orthanc's threads, concurrently: registered without Orthanc's lock). A job keeps the opaque JSON texts
 * the daemon gave it and sends its state with each step (JOB_STEP): the daemon keeps nothing between steps,
 * and Orthanc can store the job and run it again after a restart (JOB_RESTORE: the daemon reads it back).
 * While a REST request or a step waits for its answer, the daemon may call Orthanc's REST API or submit a job
 * (callbacks, served here on the waiting thread).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

static const char* const METHODS[] = {"?", "GET", "POST", "PUT", "DELETE"};

/* A cursor over a payload; every read checks that the bytes are there. */
typedef struct {
  const uint8_t *next, *end;
} cursor;

static int take_u32(cursor* c, uint32_t* value) {
  if (c->end - c->next < 4) return -1;
  *value = ocs_get_u32(c->next);
  c->next += 4;
  return 0;
}

/* A string of the payload, copied and NUL-terminated (malloc()ed); NULL when it does not fit. */
static char* take_string(cursor* c) {
  uint32_t length;
  char* text = take_u32(c, &length) == 0 && (uint64_t)(c->end - c->next) >= length ? strndup((const char*)c->next, length) : NULL;
  if (text != NULL) c->next += length;
  return text;
}

static void put_u32(FILE* f, uint32_t value) {
  uint8_t bytes[4];
  ocs_put_u32(bytes, value);
  fwrite(bytes, 4, 1, f);
}

static void put_string(FILE* f, const char* text) {
  put_u32(f, (uint32_t)strlen(text));
  fputs(text, f);
}

/* ---- Jobs ---- */

typedef struct {
  pthread_mutex_t lock; /* Orthanc reads content and progress from other threads than the step's */
  char *type, *content, *state;
  float progress;
} daemon_job;

/* The text last handed to Orthanc by this thread: valid until its next call, as Orthanc requires. */
static __thread char* t_handed;

static const char* hand_over(char* text) {
  free(t_handed);
  return t_handed = text;
}

static void job_finalize(void* p) {
  daemon_job* job = p;
  pthread_mutex_destroy(&job->lock);
  free(job->type), free(job->content), free(job->state), free(job);
}

static float job_progress(void* p) {
  daemon_job* job = p;
  pthread_mutex_lock(&job->lock);
  float progress = job->progress;
  pthread_mutex_unlock(&job->lock);
  return progress;
}

static const char* job_content(void* p) {
  daemon_job* job = p;
  pthread_mutex_lock(&job->lock);
  char* copy = strdup(job->content);
  pthread_mutex_unlock(&job->lock);
  return hand_over(copy);
}

/* The texts are the daemon's JSON: written in, never read. NULL: Orthanc does not store the job. */
static const char* job_serialized(void* p) {
  daemon_job* job = p;
  char* text = NULL;
  pthread_mutex_lock(&job->lock);
  if (asprintf(&text, "{\"Format\":\"" OCS_SERIALIZED_JOB_FORMAT "\",\"Content\":%s,\"State\":%s}", job->content,
               job->state) < 0) {
    text = NULL;
  }
  pthread_mutex_unlock(&job->lock);
  return hand_over(text);
}

static OrthancPluginErrorCode job_stop(void* p, OrthancPluginJobStopReason reason) {
  (void)p, (void)reason; /* a step is short (the daemon returns after about a second): nothing runs between */
  return OrthancPluginErrorCode_Success;
}

/* The daemon starts the job over at its next step: it knows how a job starts (protocol.ts, JOB_STEP). */
static OrthancPluginErrorCode job_reset(void* p) {
  daemon_job* job = p;
  char* state;
  pthread_mutex_lock(&job->lock);
  int ok = asprintf(&state, "{\"" OCS_JOB_START_OVER_KEY "\":%s}", job->state) >= 0;
  if (ok) free(job->state), job->state = state, job->progress = 0;
  pthread_mutex_unlock(&job->lock);
  return ok ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_NotEnoughMemory;
}

/* Replaces `*field` with the string at the cursor unless it is empty; -1 when it does not fit. */
static int update_from(cursor* c, char** field) {
  char* text = take_string(c);
  if (text != NULL && text[0] != '\0') free(*field), *field = text;
  else free(text);
  return text != NULL ? 0 : -1;
}

static int serve_callback(int fd, const uint8_t* header, char* cause, size_t cause_size);

static OrthancPluginJobStepStatus job_step(void* p) {
  daemon_job* job = p;
  pthread_mutex_lock(&job->lock);
  char* state = strdup(job->state);
  pthread_mutex_unlock(&job->lock);
  if (state == NULL) return OrthancPluginJobStepStatus_Failure;
  char what[128];
  snprintf(what, sizeof what, "a step of job %s", job->type);
  reply answer = {NULL, 0};
  request rq = {.op = OCS_OP_JOB_STEP, .verb = "run", .uuid = "", .payload = state, .size = strlen(state),
                .what = what, .answer = &answer, .serve = serve_callback};
  OrthancPluginErrorCode code = call_daemon(&rq, NULL);
  uint32_t status = OrthancPluginJobStepStatus_Failure, progress = 0;
  cursor c = {answer.data, answer.data + answer.size};
  pthread_mutex_lock(&job->lock);
  int malformed = code == OrthancPluginErrorCode_Success &&
                  (take_u32(&c, &status) != 0 || take_u32(&c, &progress) != 0 || update_from(&c, &job->content) != 0 ||
                   update_from(&c, &job->state) != 0 || c.next != c.end ||
                   status < OrthancPluginJobStepStatus_Success || status > OrthancPluginJobStepStatus_Continue);
  if (code == OrthancPluginErrorCode_Success && !malformed)
    job->progress = progress > OCS_PROGRESS_SCALE ? 1.0f : (float)progress / OCS_PROGRESS_SCALE;
  pthread_mutex_unlock(&job->lock);
  if (malformed) log_message(LOG_ERROR, "%s: protocol error: a malformed answer of %llu bytes", what, (unsigned long long)answer.size);
  free(state), free(answer.data);
  return malformed ? OrthancPluginJobStepStatus_Failure : (OrthancPluginJobStepStatus)status;
}

/* A job of the daemon's, ready to submit; NULL when memory is short. Takes its strings (frees them on failure). */
static OrthancPluginJob* create_job(char* type, char* content, char* state) {
  daemon_job* job = calloc(1, sizeof *job);
  OrthancPluginJob* created = NULL;
  if (job != NULL) {
    pthread_mutex_init(&job->lock, NULL);
    job->type = type, job->content = content, job->state = state;
  }
  if (job != NULL && type != NULL && content != NULL && state != NULL) {
    created = OrthancPluginCreateJob(g_context, job, job_finalize, type, job_progress, job_content, job_serialized,
                                     job_step, job_stop, job_reset);
  }
  if (created == NULL && job != NULL) job_finalize(job);
  else if (created == NULL) free(type), free(content), free(state);
  return created;
}

/* Orthanc calls this at start-up for each job it stored: the daemon says whether it is one of ours (then its
 * content and state) or not (an empty answer). */
static OrthancPluginJob* unserialize_job(const char* type, const char* serialized) {
  reply payload = {NULL, 0}, answer = {NULL, 0};
  FILE* f = open_memstream((char**)&payload.data, &payload.size);
  if (f == NULL) return NULL;
  put_string(f, type), fputs(serialized, f), fclose(f);
  char what[128];
  snprintf(what, sizeof what, "a stored %s job", type);
  request rq = {.op = OCS_OP_JOB_RESTORE, .verb = "restore", .uuid = "", .payload = payload.data,
                .size = payload.size, .what = what, .answer = &answer};
  OrthancPluginJob* job = NULL;
  if (call_daemon(&rq, NULL) == OrthancPluginErrorCode_Success && answer.size > 0) {
    cursor c = {answer.data, answer.data + answer.size};
    char *content = take_string(&c), *state = take_string(&c);
    if (c.next == c.end) job = create_job(strdup(type), content, state);
    else free(content), free(state);
    if (job == NULL) log_message(LOG_ERROR, "cannot restore %s: a malformed answer, or memory is short", what);
  }
  free(payload.data), free(answer.data);
  return job;
}

/* ---- Callbacks ---- */

static int send_callback_answer(int fd, int32_t code, const void* body, uint64_t size) {
  uint8_t header[OCS_CALLBACK_HEADER_SIZE];
  ocs_put_u32(header + OCS_RESP_MAGIC, OCS_CALLBACK_MAGIC);
  ocs_put_u32(header + OCS_RESP_CODE, (uint32_t)code);
  ocs_put_u64(header + OCS_RESP_SIZE, size);
  int error = send_all(fd, header, sizeof header);
  return error == 0 && size > 0 ? send_all(fd, body, size) : error;
}

/* ORTHANC_REST: Orthanc's built-in REST API, on the thread that waits for the daemon. */
static int serve_rest_callback(int fd, cursor* c) {
  uint32_t method = 0;
  char* uri = take_u32(c, &method) == 0 && method >= 1 && method <= 4 ? take_string(c) : NULL;
  if (uri == NULL) return CALLBACK_MALFORMED;
  OrthancPluginMemoryBuffer answer = {NULL, 0};
  uint32_t size = (uint32_t)(c->end - c->next);
  OrthancPluginErrorCode code =
      method == OrthancPluginHttpMethod_Get    ? OrthancPluginRestApiGet(g_context, &answer, uri)
      : method == OrthancPluginHttpMethod_Post ? OrthancPluginRestApiPost(g_context, &answer, uri, c->next, size)
      : method == OrthancPluginHttpMethod_Put  ? OrthancPluginRestApiPut(g_context, &answer, uri, c->next, size)
                                               : OrthancPluginRestApiDelete(g_context, uri);
  if (code != OrthancPluginErrorCode_Success && code != OrthancPluginErrorCode_UnknownResource) {
    log_message(LOG_WARNING, "the daemon's call %s %s failed inside Orthanc: error %d", METHODS[method], uri, (int)code);
  }
  free(uri);
  int error = send_callback_answer(fd, code, answer.data, code == OrthancPluginErrorCode_Success ? answer.size : 0);
  if (answer.data != NULL) OrthancPluginFreeMemoryBuffer(g_context, &answer);
  return error;
}

/* SUBMIT_JOB: a job whose steps come back to the daemon; answers the job's id. */
static int serve_job_callback(int fd, cursor* c) {
  uint32_t priority;
  char* type = take_u32(c, &priority) == 0 ? take_string(c) : NULL;
  char* content = type != NULL ? take_string(c) : NULL;
  char* state = content != NULL ? take_string(c) : NULL;
  if (state == NULL || c->next != c->end) {
    free(type), free(content), free(state);
    return CALLBACK_MALFORMED;
  }
  char shown[128];
  snprintf(shown, sizeof shown, "%s", type);
  OrthancPluginJob* job = create_job(type, content, state);
  char* id = job != NULL ? OrthancPluginSubmitJob(g_context, job, (int32_t)priority) : NULL;
  if (id == NULL) log_message(LOG_ERROR, "cannot submit a %s job to Orthanc's job engine", shown);
  int error = send_callback_answer(fd, id != NULL ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_InternalError,
                                   id, id != NULL ? strlen(id) : 0);
  if (id != NULL) OrthancPluginFreeString(g_context, id);
  return error;
}

/* Serves one callback whose header was just read on `fd`: reads its payload, calls Orthanc, answers. */
static int serve_callback(int fd, const uint8_t* header, char* cause, size_t cause_size) {
  uint32_t kind = ocs_get_u32(header + OCS_RESP_CODE);
  uint64_t size = ocs_get_u64(header + OCS_RESP_SIZE), received;
  int known = kind == OCS_CALLBACK_ORTHANC_REST || kind == OCS_CALLBACK_SUBMIT_JOB;
  uint8_t* payload = known && size <= OCS_MAX_REST_PAYLOAD ? malloc(size > 0 ? size : 1) : NULL;
  int error = payload != NULL ? recv_all(fd, payload, size, &received) : CALLBACK_MALFORMED;
  cursor c = {payload, payload + size};
  if (error == 0) error = kind == OCS_CALLBACK_ORTHANC_REST ? serve_rest_callback(fd, &c) : serve_job_callback(fd, &c);
  if (error == CALLBACK_MALFORMED) {
    snprintf(cause, cause_size, "protocol error: a malformed callback (kind %u, %llu bytes)", kind, (unsigned long long)size);
  }
  free(payload);
  return error;
}

/* ---- REST routes ---- */

/* An HTTP request as a REST payload (protocol.ts) in `*payload`; -1 when memory is short. The client's
 * credentials (authorization, cookie) stay in Orthanc, which has already checked them. */
static int encode_rest_request(const char* url, const OrthancPluginHttpRequest* http, reply* payload) {
  FILE* f = open_memstream((char**)&payload->data, &payload->size);
  if (f == NULL) return -1;
  uint32_t headers = 0, fixed[] = {http->method, http->groupsCount, http->getCount, 0, http->bodySize, 0};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) put_u32(f, fixed[i]);
  put_string(f, url);
  for (uint32_t i = 0; i < http->groupsCount; i++) put_string(f, http->groups[i]);
  for (uint32_t i = 0; i < http->getCount; i++) put_string(f, http->getKeys[i]), put_string(f, http->getValues[i]);
  for (uint32_t i = 0; i < http->headersCount; i++) {
    if (strcmp(http->headersKeys[i], "authorization") == 0 || strcmp(http->headersKeys[i], "cookie") == 0) continue;
    put_string(f, http->headersKeys[i]), put_string(f, http->headersValues[i]), headers++;
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

/* Hands the daemon's answer to Orthanc: 200 as a buffer, 405 with its allowed methods, else a status. */
static OrthancPluginErrorCode send_rest_answer(OrthancPluginRestOutput* output, const char* what, const reply* r) {
  uint32_t status = r->size >= OCS_REST_ANSWER_FIXED_SIZE ? ocs_get_u32(r->data + OCS_REST_ANSWER_STATUS) : 0;
  uint64_t type_length = status != 0 ? ocs_get_u32(r->data + OCS_REST_ANSWER_TYPE_LENGTH) : 0;
  uint64_t allow_length = status != 0 ? ocs_get_u32(r->data + OCS_REST_ANSWER_ALLOW_LENGTH) : 0;
  uint64_t used = OCS_REST_ANSWER_FIXED_SIZE + type_length + allow_length;
  if (status < 100 || status > 599 || used > r->size) {
    log_message(LOG_ERROR, "cannot forward %s: protocol error: a malformed REST answer of %llu bytes", what,
                (unsigned long long)r->size);
    return OrthancPluginErrorCode_Plugin;
  }
  char* type = strndup((const char*)r->data + OCS_REST_ANSWER_FIXED_SIZE, type_length);
  char* allow = strndup((const char*)r->data + OCS_REST_ANSWER_FIXED_SIZE + type_length, allow_length);
  const char* body = (const char*)r->data + used;
  if (type == NULL || allow == NULL) status = 0;
  else if (status == 200) OrthancPluginAnswerBuffer(g_context, output, body, (uint32_t)(r->size - used), type);
  else if (status == 405) OrthancPluginSendMethodNotAllowed(g_context, output, allow);
  else {
    if (type[0] != '\0') OrthancPluginSetHttpHeader(g_context, output, "Content-Type", type);
    OrthancPluginSendHttpStatus(g_context, output, (uint16_t)status, body, (uint32_t)(r->size - used));
  }
  free(type), free(allow);
  return status != 0 ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_NotEnoughMemory;
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
