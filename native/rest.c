/*
 * The daemon's REST routes, its jobs, and its calls into Orthanc; protocol.ts draws every payload. An HTTP
 * request on a route is forwarded as is (Orthanc's threads, concurrently: registered without Orthanc's lock).
 * A job holds the opaque JSON texts the daemon gave it and sends its state with each step (JOB_STEP): the
 * daemon keeps nothing between steps, and Orthanc can store the job and run it again after a restart
 * (JOB_RESTORE: the daemon reads it back). While a REST request or a step waits for its answer, the daemon may
 * call Orthanc's REST API or submit a job (callbacks, served here on the waiting thread).
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

/* The string (u32 length, bytes) at `*at`, copied and NUL-terminated; NULL when it does not fit before `end`. */
static char* take_string(const uint8_t** at, const uint8_t* end) {
  uint64_t room = (uint64_t)(end - *at), length = room >= 4 ? ocs_get_u32(*at) : 0;
  char* text = room >= 4 && length <= room - 4 ? strndup((const char*)*at + 4, length) : NULL;
  if (text != NULL) *at += 4 + length;
  return text;
}

static void put_string(FILE* f, const char* text) {
  uint8_t length[4];
  ocs_put_u32(length, (uint32_t)strlen(text));
  fwrite(length, 4, 1, f), fputs(text, f);
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
  char what[128], *content = NULL, *state = NULL;
  pthread_mutex_lock(&g_jobs_lock);
  char* sent = strdup(job->state);
  pthread_mutex_unlock(&g_jobs_lock);
  snprintf(what, sizeof what, "a step of job %s", job->type);
  reply answer = {NULL, 0};
  request rq = {.op = OCS_OP_JOB_STEP, .verb = "run", .uuid = "", .payload = sent, .size = sent ? strlen(sent) : 0,
                .what = what, .answer = &answer, .serve = serve_callback};
  if (sent == NULL || call_daemon(&rq, NULL) != OrthancPluginErrorCode_Success) return free(sent), OrthancPluginJobStepStatus_Failure;
  uint32_t status = answer.size >= OCS_JOB_STEP_ANSWER_FIXED_SIZE ? ocs_get_u32(answer.data + OCS_JOB_STEP_STATUS) : 0;
  uint32_t progress = status != 0 ? ocs_get_u32(answer.data + OCS_JOB_STEP_PROGRESS) : 0;
  const uint8_t *end = answer.data + answer.size, *at = status != 0 ? answer.data + OCS_JOB_STEP_ANSWER_FIXED_SIZE : end;
  int ok = status >= OrthancPluginJobStepStatus_Success && status <= OrthancPluginJobStepStatus_Continue &&
           (content = take_string(&at, end)) != NULL && (state = take_string(&at, end)) != NULL && at == end;
  pthread_mutex_lock(&g_jobs_lock);
  if (ok && content[0] != '\0') free(job->content), job->content = content, content = NULL;
  if (ok && state[0] != '\0') free(job->state), job->state = state, state = NULL;
  if (ok) job->progress = progress > OCS_PROGRESS_SCALE ? 1.0f : (float)progress / OCS_PROGRESS_SCALE;
  pthread_mutex_unlock(&g_jobs_lock);
  if (!ok) log_message(LOG_ERROR, "%s: protocol error: a malformed answer of %llu bytes", what, (unsigned long long)answer.size);
  free(sent), free(content), free(state), free(answer.data);
  return ok ? (OrthancPluginJobStepStatus)status : OrthancPluginJobStepStatus_Failure;
}

/* A job of the daemon's, ready to submit; NULL when memory is short. Takes its strings (frees them on failure). */
static OrthancPluginJob* create_job(char* type, char* content, char* state) {
  daemon_job* job = type && content && state ? calloc(1, sizeof *job) : NULL;
  OrthancPluginJob* created = NULL;
  if (job != NULL) {
    *job = (daemon_job){type, content, state, 0};
    created = OrthancPluginCreateJob(g_context, job, job_finalize, type, job_progress, job_content, job_serialized,
                                     job_step, job_stop, job_reset);
  }
  if (created == NULL) free(type), free(content), free(state), free(job);
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
    const uint8_t *at = answer.data, *end = answer.data + answer.size;
    char *content = take_string(&at, end), *state = take_string(&at, end);
    if (at == end) job = create_job(strdup(type), content, state);
    else free(content), free(state);
    if (job == NULL) log_message(LOG_ERROR, "cannot restore %s: a malformed answer, or memory is short", what);
  }
  free(payload.data), free(answer.data);
  return job;
}

/* ---- Callbacks ---- */

/* Serves one callback whose header was just read on `fd`: reads its payload, calls Orthanc, answers (a header
 * like a response's, with the CALLBACK magic, then the answer's bytes). 0, an errno value, or CALLBACK_MALFORMED. */
static int serve_callback(int fd, const uint8_t* header, char* cause, size_t cause_size) {
  uint32_t kind = ocs_get_u32(header + OCS_RESP_CODE), method = 0;
  uint64_t size = ocs_get_u64(header + OCS_RESP_SIZE), received;
  uint8_t* payload = size <= OCS_MAX_REST_PAYLOAD ? malloc(size + 1) : NULL, answer_header[OCS_CALLBACK_HEADER_SIZE];
  int error = payload != NULL ? recv_all(fd, payload, size, &received) : CALLBACK_MALFORMED;
  const uint8_t *at = payload, *end = payload != NULL ? payload + size : NULL;
  char *text = NULL, *content = NULL, *state = NULL, *id = NULL;
  OrthancPluginMemoryBuffer answer = {NULL, 0};
  OrthancPluginErrorCode code = OrthancPluginErrorCode_InternalError;
  if (error == 0 && size >= 4) method = ocs_get_u32(payload), at += 4; /* ORTHANC_REST: the method; SUBMIT_JOB: the priority */
  if (error == 0 && size >= 4 && kind == OCS_CALLBACK_ORTHANC_REST && method >= 1 && method <= 4 &&
      (text = take_string(&at, end)) != NULL) {
    uint32_t body = (uint32_t)(end - at);
    code = method == OrthancPluginHttpMethod_Get    ? OrthancPluginRestApiGet(g_context, &answer, text)
           : method == OrthancPluginHttpMethod_Post ? OrthancPluginRestApiPost(g_context, &answer, text, at, body)
           : method == OrthancPluginHttpMethod_Put  ? OrthancPluginRestApiPut(g_context, &answer, text, at, body)
                                                    : OrthancPluginRestApiDelete(g_context, text);
    if (code != OrthancPluginErrorCode_Success && code != OrthancPluginErrorCode_UnknownResource)
      log_message(LOG_WARNING, "the daemon's call %s %s failed inside Orthanc: error %d", METHODS[method], text, (int)code);
    if (code != OrthancPluginErrorCode_Success) answer.size = 0;
  } else if (error == 0 && size >= 4 && kind == OCS_CALLBACK_SUBMIT_JOB && (text = take_string(&at, end)) != NULL &&
             (content = take_string(&at, end)) != NULL && (state = take_string(&at, end)) != NULL && at == end) {
    char shown[128];
    snprintf(shown, sizeof shown, "%s", text);
    OrthancPluginJob* job = create_job(text, content, state); /* takes the strings */
    text = content = state = NULL;
    if (job == NULL || (id = OrthancPluginSubmitJob(g_context, job, (int32_t)method)) == NULL)
      log_message(LOG_ERROR, "cannot submit a %s job to Orthanc's job engine", shown);
    code = id != NULL ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_InternalError;
  } else if (error == 0 || error == CALLBACK_MALFORMED) {
    error = CALLBACK_MALFORMED;
    snprintf(cause, cause_size, "protocol error: a malformed callback (kind %u, %llu bytes)", kind, (unsigned long long)size);
  }
  uint64_t answer_size = id != NULL ? strlen(id) : answer.size;
  ocs_put_u32(answer_header + OCS_RESP_MAGIC, OCS_CALLBACK_MAGIC);
  ocs_put_u32(answer_header + OCS_RESP_CODE, (uint32_t)code);
  ocs_put_u64(answer_header + OCS_RESP_SIZE, answer_size);
  if (error == 0) error = send_all(fd, answer_header, sizeof answer_header);
  if (error == 0) error = send_all(fd, id != NULL ? (const void*)id : answer.data, answer_size);
  if (answer.data != NULL) OrthancPluginFreeMemoryBuffer(g_context, &answer);
  if (id != NULL) OrthancPluginFreeString(g_context, id);
  free(payload), free(text), free(content), free(state);
  return error;
}

/* ---- REST routes ---- */

/* An HTTP request as a REST payload in `*payload`; -1 when memory is short. The client's credentials
 * (authorization, cookie) stay in Orthanc, which has already checked them. */
static int encode_rest_request(const char* url, const OrthancPluginHttpRequest* http, reply* payload) {
  FILE* f = open_memstream((char**)&payload->data, &payload->size);
  uint32_t headers = 0, fixed[] = {http->method, http->groupsCount, http->getCount, 0, http->bodySize, 0};
  uint8_t bytes[sizeof fixed];
  if (f == NULL) return -1;
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) ocs_put_u32(bytes + 4 * i, fixed[i]);
  fwrite(bytes, sizeof bytes, 1, f), put_string(f, url);
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
  uint64_t used = OCS_REST_ANSWER_FIXED_SIZE + type_length + (status != 0 ? ocs_get_u32(r->data + OCS_REST_ANSWER_ALLOW_LENGTH) : 0);
  if (status < 100 || status > 599 || used > r->size) {
    log_message(LOG_ERROR, "cannot forward %s: protocol error: a malformed REST answer of %llu bytes", what,
                (unsigned long long)r->size);
    return OrthancPluginErrorCode_Plugin;
  }
  char* type = strndup((const char*)r->data + OCS_REST_ANSWER_FIXED_SIZE, type_length);
  char* allow = strndup((const char*)r->data + OCS_REST_ANSWER_FIXED_SIZE + type_length, used - type_length - OCS_REST_ANSWER_FIXED_SIZE);
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

void rest_register(void) {
  static const char* const routes[] = OCS_REST_ROUTES;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    OrthancPluginRegisterRestCallbackNoLock(g_context, routes[i], rest_forward);
  }
  OrthancPluginRegisterJobsUnserializer(g_context, unserialize_job);
}
