/*
 * The daemon's REST routes, its jobs, and its calls into Orthanc (protocol.ts draws every payload). A request
 * on a route is forwarded as is, on Orthanc's thread (registered without Orthanc's lock). A job holds the
 * daemon's last answer about it and sends its serialization with each request (JOB_STEP, JOB_RESTORE): the
 * daemon keeps nothing between them, and Orthanc can store the job and run it again after a restart. While a
 * REST request or a step waits for its answer, the daemon may call Orthanc's REST API or submit a job
 * (callbacks, served here).
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
static int g_type_status;        /* give answers other than 200 a Content-Type: Orthanc gives none (READY line) */

typedef struct {
  char* type;
  uint8_t* answer; /* the daemon's last job answer, checked by job_answer() */
} daemon_job;

static int serve_callback(int fd, const uint8_t* header, char* cause, size_t cause_size);

/* ---- Jobs ---- */

/* A copy of `size` bytes when they are a job answer (a status, a progress, then two strings); else NULL. */
static uint8_t* job_answer(const uint8_t* data, uint64_t size) {
  uint32_t status = size > OCS_JOB_ANSWER_CONTENT ? ocs_get_u32(data + OCS_JOB_ANSWER_STATUS) : 0;
  uint8_t* copy = status >= OrthancPluginJobStepStatus_Success && status <= OrthancPluginJobStepStatus_Continue &&
                  data[size - 1] == '\0' && memchr(data + OCS_JOB_ANSWER_CONTENT, 0, size - OCS_JOB_ANSWER_CONTENT - 1)
                  ? malloc(size) : NULL;
  return copy != NULL ? memcpy(copy, data, size) : NULL;
}

/* The daemon's answer about the job `type` as `serialized` (JOB_STEP, JOB_RESTORE with `flags`); NULL when it
 * failed (logged) or, for a restore, when the job is not ours. */
static uint8_t* ask_daemon(uint32_t op, uint16_t flags, const char* type, const char* serialized) {
  char what[128], *payload = NULL;
  snprintf(what, sizeof what, "%s job %s", op == OCS_OP_JOB_STEP ? "a step of" : "the stored", type);
  int size = serialized != NULL ? asprintf(&payload, "%s%c%s", type, '\0', serialized) : -1;
  reply answer = {NULL, 0};
  request rq = {.op = op, .verb = op == OCS_OP_JOB_STEP ? "run" : "restore", .uuid = "", .payload = payload,
                .size = (uint64_t)size, .flags = flags, .what = what, .answer = &answer, .serve = serve_callback};
  uint8_t* job = size >= 0 && call_daemon(&rq, NULL) == 0 && answer.size > 0 ? job_answer(answer.data, answer.size) : NULL;
  if (job == NULL && answer.size > 0) log_message(LOG_ERROR, "%s: a malformed answer of %llu bytes, or memory is short",
                                                  what, (unsigned long long)answer.size);
  free(size >= 0 ? payload : NULL), free(answer.data);
  return job;
}

/* A copy of the job's content (0) or serialization (1), handed to Orthanc. */
static const char* hand_over(daemon_job* job, int serialized) {
  pthread_mutex_lock(&g_jobs_lock);
  const char* content = (const char*)job->answer + OCS_JOB_ANSWER_CONTENT;
  char* copy = strdup(serialized ? content + strlen(content) + 1 : content);
  pthread_mutex_unlock(&g_jobs_lock);
  free(t_handed);
  return t_handed = copy;
}

static const char* job_content(void* job) { return hand_over(job, 0); }
static const char* job_serialized(void* job) { return hand_over(job, 1); }

static float job_progress(void* p) {
  pthread_mutex_lock(&g_jobs_lock);
  uint32_t progress = ocs_get_u32(((daemon_job*)p)->answer + OCS_JOB_ANSWER_PROGRESS);
  pthread_mutex_unlock(&g_jobs_lock);
  return progress > OCS_PROGRESS_SCALE ? 1.0f : (float)progress / OCS_PROGRESS_SCALE;
}

static void job_finalize(void* job) { free(((daemon_job*)job)->type), free(((daemon_job*)job)->answer), free(job); }

/* A step is short (the daemon returns after about a second): nothing runs between two. */
static OrthancPluginErrorCode job_stop(void* job, OrthancPluginJobStopReason reason) { return (void)job, (void)reason, 0; }

/* Asks the daemon about the job and keeps its answer; returns the status it says (Failure: none). */
static OrthancPluginJobStepStatus update_job(daemon_job* job, uint32_t op, uint16_t flags) {
  uint8_t* answer = ask_daemon(op, flags, job->type, hand_over(job, 1));
  if (answer == NULL) return OrthancPluginJobStepStatus_Failure;
  OrthancPluginJobStepStatus status = (OrthancPluginJobStepStatus)ocs_get_u32(answer + OCS_JOB_ANSWER_STATUS);
  pthread_mutex_lock(&g_jobs_lock);
  free(job->answer), job->answer = answer;
  pthread_mutex_unlock(&g_jobs_lock);
  return status;
}

static OrthancPluginJobStepStatus job_step(void* job) { return update_job(job, OCS_OP_JOB_STEP, 0); }

/* The daemon starts the job over at its next step: it knows how a job starts (protocol.ts, JOB_RESTORE). */
static OrthancPluginErrorCode job_reset(void* job) {
  return update_job(job, OCS_OP_JOB_RESTORE, OCS_REQ_FLAG_START_OVER) != OrthancPluginJobStepStatus_Failure
             ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_InternalError;
}

/* A job of the daemon's, ready to submit; takes `answer` (job_answer()'s). NULL when there is none or memory is short. */
static OrthancPluginJob* create_job(const char* type, uint8_t* answer) {
  daemon_job* job = answer != NULL ? calloc(1, sizeof *job) : NULL;
  OrthancPluginJob* created = NULL;
  if (job != NULL && (job->type = strdup(type)) != NULL) {
    job->answer = answer;
    created = OrthancPluginCreateJob(g_context, job, job_finalize, job->type, job_progress, job_content, job_serialized,
                                     job_step, job_stop, job_reset);
  }
  if (created == NULL && answer != NULL) log_message(LOG_ERROR, "cannot create a %s job: memory is short", type);
  if (created == NULL) free(job != NULL ? job->type : NULL), free(job), free(answer);
  return created;
}

/* Orthanc calls this at start-up for each job it stored: the daemon says whether it is one of ours. */
static OrthancPluginJob* unserialize_job(const char* type, const char* serialized) {
  return create_job(type, ask_daemon(OCS_OP_JOB_RESTORE, 0, type, serialized));
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
  char* text = NULL; /* the string after the word: a uri, a job's type, a uuid */
  int64_t end = -1;   /* where what follows it starts; -1: it has no NUL */
  if (error == 0 && payload.size >= 4) {
    payload.data[payload.size] = '\0';
    word = ocs_get_u32(payload.data), text = (char*)payload.data + 4; /* the method; the priority */
    end = 5 + strlen(text) <= payload.size ? (int64_t)(5 + strlen(text)) : -1;
  }
  OrthancPluginMemoryBuffer answer = {NULL, 0};
  OrthancPluginErrorCode code = OrthancPluginErrorCode_InternalError;
  char* id = NULL;
  if (end >= 0 && kind == OCS_CALLBACK_ORTHANC_REST && word >= 1 && word <= 4) {
    const char *uri = text, *body = (char*)payload.data + end;
    uint32_t length = (uint32_t)(payload.size - (uint64_t)end);
    code = word == OrthancPluginHttpMethod_Get    ? OrthancPluginRestApiGet(g_context, &answer, uri)
           : word == OrthancPluginHttpMethod_Post ? OrthancPluginRestApiPost(g_context, &answer, uri, body, length)
           : word == OrthancPluginHttpMethod_Put  ? OrthancPluginRestApiPut(g_context, &answer, uri, body, length)
                                                  : OrthancPluginRestApiDelete(g_context, uri);
    if (code != OrthancPluginErrorCode_Success && code != OrthancPluginErrorCode_UnknownResource)
      log_message(LOG_WARNING, "the daemon's call %s %s failed inside Orthanc: error %d", METHODS[word], uri, (int)code);
  } else if (end >= 0 && kind == OCS_CALLBACK_SUBMIT_JOB) {
    OrthancPluginJob* job = create_job(text, job_answer(payload.data + end, payload.size - (uint64_t)end));
    if (job == NULL || (id = OrthancPluginSubmitJob(g_context, job, (int32_t)word)) == NULL)
      log_message(LOG_ERROR, "cannot submit a %s job to Orthanc's job engine", text);
    code = id != NULL ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_InternalError;
  } else if (end >= 0 && kind == OCS_CALLBACK_ATTACHMENT_RECORD) { /* Orthanc >= 1.12.8; word 1: set it to the rest */
    code = word ? OrthancPluginSetAttachmentCustomData(g_context, text, payload.data + end, (uint32_t)(payload.size - end))
                : OrthancPluginGetAttachmentCustomData(g_context, &answer, text);
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
    error = CALLBACK_MALFORMED, snprintf(cause, cause_size, "protocol error: a malformed callback (kind %u, %llu bytes)",
                                         kind, (unsigned long long)payload.size);
  }
  uint64_t size = id != NULL ? strlen(id) : code == OrthancPluginErrorCode_Success ? answer.size : 0;
  uint8_t answer_header[OCS_CALLBACK_HEADER_SIZE];
  ocs_put_u32(answer_header + OCS_RESP_MAGIC, OCS_CALLBACK_MAGIC), ocs_put_u32(answer_header + OCS_RESP_CODE, (uint32_t)code);
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

/* An answer with a status other than 200 and a body: SendHttpStatus, the one call for it, which on Orthanc >=
 * 1.12.2 adds a Content-Type of its own (text/plain), so ours would make two. */
static void send_status(OrthancPluginRestOutput* output, uint16_t status, const char* type, const void* body, uint32_t size) {
  if (g_type_status && type[0] != '\0') OrthancPluginSetHttpHeader(g_context, output, "Content-Type", type);
  OrthancPluginSendHttpStatus(g_context, output, status, body, size);
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
  else send_status(output, (uint16_t)status, text, body, length);
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
  int answered = 1, large = payload.size > OCS_MAX_REST_PAYLOAD;
  OrthancPluginErrorCode code = large ? OrthancPluginErrorCode_Success : call_daemon(&rq, &answered);
  /* Unreachable: 503, so that a load balancer's probe fails, with the cause in Orthanc's log (call_daemon's). */
  const char* text = large ? PLUGIN_NAME ": the request is too large\n"
                     : answered ? NULL : PLUGIN_NAME ": the daemon is unreachable; Orthanc's log says why\n";
  if (text != NULL) send_status(output, large ? 413 : 503, "text/plain; charset=utf-8", text, (uint32_t)strlen(text)), code = 0;
  else if (code == OrthancPluginErrorCode_Success) code = send_rest_answer(output, what, &answer);
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

void rest_register(int features) {
  g_type_status = features & FEATURE_TYPE_STATUS;
  static const char* const routes[] = OCS_REST_ROUTES;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) OrthancPluginRegisterRestCallbackNoLock(g_context, routes[i], rest_forward);
  OrthancPluginRegisterJobsUnserializer(g_context, unserialize_job);
}
