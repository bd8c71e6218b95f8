/*
 * The daemon's REST routes, its jobs, and its calls into Orthanc. Each HTTP request on a route is
 * forwarded as is (Orthanc's threads, concurrently: registered without Orthanc's lock). A job keeps the
 * opaque JSON texts the daemon gave it and sends its state with each step (JOB_STEP): the daemon keeps
 * nothing between steps, and Orthanc can store the job and run it again after a restart (JOB_RESTORE: the
 * daemon reads the stored text back). While a REST request or a step waits for its answer, the daemon may
 * call Orthanc's REST API or submit a job (callbacks, served here on the waiting thread).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

/* In serialized jobs, so that the daemon recognises ours (the official plugin's are different). */
#define SERIALIZED_FORMAT "orthanc-cloud-storage/1"
#define TEXT_CAPACITY 256 /* longest content type or list of allowed methods in a REST answer */

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
  char* text = take_u32(c, &length) == 0 && (uint64_t)(c->end - c->next) >= length ? malloc(length + 1ul) : NULL;
  if (text == NULL) return NULL;
  memcpy(text, c->next, length);
  text[length] = '\0';
  c->next += length;
  return text;
}

static uint8_t* put_string(uint8_t* p, const char* text) {
  size_t length = strlen(text);
  ocs_put_u32(p, (uint32_t)length);
  memcpy(p + 4, text, length);
  return p + 4 + length;
}

/* ---------------------------------------------------------------------------------------------- */
/* Jobs                                                                                           */

typedef struct {
  pthread_mutex_t lock; /* Orthanc reads content and progress from other threads than the step's */
  char *type, *content, *state, *initial_state; /* the initial state: for a reset, the job starts over */
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
  free(job->type), free(job->content), free(job->state), free(job->initial_state), free(job);
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

/* The three texts are the daemon's JSON: they are written in, never read. NULL: Orthanc does not store it. */
static const char* job_serialized(void* p) {
  daemon_job* job = p;
  char* text = NULL;
  pthread_mutex_lock(&job->lock);
  if (asprintf(&text, "{\"Format\":\"" SERIALIZED_FORMAT "\",\"Content\":%s,\"State\":%s,\"InitialState\":%s}",
               job->content, job->state, job->initial_state) < 0) {
    text = NULL;
  }
  pthread_mutex_unlock(&job->lock);
  return hand_over(text);
}

static OrthancPluginErrorCode job_stop(void* p, OrthancPluginJobStopReason reason) {
  (void)p, (void)reason; /* a step is short (the daemon returns after about a second): nothing runs between */
  return OrthancPluginErrorCode_Success;
}

static OrthancPluginErrorCode job_reset(void* p) {
  daemon_job* job = p;
  char* state = strdup(job->initial_state);
  if (state == NULL) return OrthancPluginErrorCode_NotEnoughMemory;
  pthread_mutex_lock(&job->lock);
  free(job->state);
  job->state = state;
  job->progress = 0;
  pthread_mutex_unlock(&job->lock);
  return OrthancPluginErrorCode_Success;
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
  free(state);
  uint32_t status = OrthancPluginJobStepStatus_Failure, progress = 0;
  if (code == OrthancPluginErrorCode_Success) {
    cursor c = {answer.data, answer.data + answer.size};
    pthread_mutex_lock(&job->lock);
    int malformed = take_u32(&c, &status) != 0 || take_u32(&c, &progress) != 0 || update_from(&c, &job->content) != 0 ||
                    update_from(&c, &job->state) != 0 || c.next != c.end ||
                    status < OrthancPluginJobStepStatus_Success || status > OrthancPluginJobStepStatus_Continue;
    if (!malformed) job->progress = progress > 1000000 ? 1.0f : (float)progress / 1000000.0f;
    pthread_mutex_unlock(&job->lock);
    if (malformed) {
      log_message(LOG_ERROR, "%s: protocol error: a malformed answer of %llu bytes", what,
                  (unsigned long long)answer.size);
      status = OrthancPluginJobStepStatus_Failure;
    }
  }
  free(answer.data);
  return (OrthancPluginJobStepStatus)status;
}

/* A job of the daemon's, ready to submit; NULL when memory is short. Takes its strings (frees them on failure). */
static OrthancPluginJob* create_job(char* type, char* content, char* state, char* initial_state) {
  daemon_job* job = calloc(1, sizeof *job);
  OrthancPluginJob* created = NULL;
  if (job != NULL) {
    pthread_mutex_init(&job->lock, NULL);
    job->type = type, job->content = content, job->state = state, job->initial_state = initial_state;
  }
  if (job != NULL && type != NULL && content != NULL && state != NULL && initial_state != NULL) {
    created = OrthancPluginCreateJob(g_context, job, job_finalize, type, job_progress, job_content, job_serialized,
                                     job_step, job_stop, job_reset);
  }
  if (created == NULL && job != NULL) job_finalize(job);
  else if (created == NULL) free(type), free(content), free(state), free(initial_state);
  return created;
}

/* Orthanc calls this at start-up for each job it stored: the daemon says whether it is one of ours (then
 * its content, state and initial state, as strings) or not (an empty answer). */
static OrthancPluginJob* unserialize_job(const char* type, const char* serialized) {
  size_t size = 4 + strlen(type) + strlen(serialized);
  uint8_t* payload = malloc(size);
  if (payload == NULL) return NULL;
  memcpy(put_string(payload, type), serialized, strlen(serialized));
  char what[128];
  snprintf(what, sizeof what, "a stored %s job", type);
  reply answer = {NULL, 0};
  request rq = {.op = OCS_OP_JOB_RESTORE, .verb = "restore", .uuid = "", .payload = payload, .size = size,
                .what = what, .answer = &answer};
  OrthancPluginJob* job = NULL;
  if (call_daemon(&rq, NULL) == OrthancPluginErrorCode_Success && answer.size > 0) {
    cursor c = {answer.data, answer.data + answer.size};
    char *content = take_string(&c), *state = take_string(&c), *initial = take_string(&c);
    job = c.next == c.end ? create_job(strdup(type), content, state, initial) : NULL;
    if (job == NULL) log_message(LOG_ERROR, "cannot restore %s: a malformed answer, or memory is short", what);
    if (c.next != c.end) free(content), free(state), free(initial);
  }
  free(payload), free(answer.data);
  return job;
}

/* ---------------------------------------------------------------------------------------------- */
/* Callbacks                                                                                      */

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
  char* shown = strdup(type);
  OrthancPluginJob* job = create_job(type, content, state, strdup(state));
  char* id = job != NULL ? OrthancPluginSubmitJob(g_context, job, (int32_t)priority) : NULL;
  if (id == NULL) log_message(LOG_ERROR, "cannot submit a %s job to Orthanc's job engine", shown ? shown : "");
  free(shown);
  int error = id != NULL ? send_callback_answer(fd, OrthancPluginErrorCode_Success, id, strlen(id))
                         : send_callback_answer(fd, OrthancPluginErrorCode_InternalError, NULL, 0);
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
    snprintf(cause, cause_size, "protocol error: a malformed callback (kind %u, %llu bytes)", kind,
             (unsigned long long)size);
  }
  free(payload);
  return error;
}

/* ---------------------------------------------------------------------------------------------- */
/* REST routes                                                                                    */

/* The client's credentials stay in Orthanc, which has already checked them. */
static int forwarded(const char* name) { return strcmp(name, "authorization") != 0 && strcmp(name, "cookie") != 0; }

/* An HTTP request as a REST payload (protocol.ts), malloc()ed, of `*size` bytes; NULL when larger than
 * OCS_MAX_REST_PAYLOAD (`*size` then says how large) or when memory is short. */
static uint8_t* encode_rest_request(const char* url, const OrthancPluginHttpRequest* http, uint64_t* size) {
  /* The strings after the url, in order: the groups, the arguments' keys and values, the headers' (the
   * forwarded ones): measured in a first pass, written in a second. */
  const char* const* lists[3][2] = {{http->groups, NULL}, {http->getKeys, http->getValues},
                                    {http->headersKeys, http->headersValues}};
  uint32_t counts[3] = {http->groupsCount, http->getCount, 0};
  uint64_t total = OCS_REST_REQUEST_FIXED_SIZE + 4 + strlen(url) + http->bodySize;
  for (int l = 0; l < 3; l++) {
    for (uint32_t i = 0; i < (l == 2 ? http->headersCount : counts[l]); i++) {
      if (l == 2 && !forwarded(lists[l][0][i])) continue;
      for (int k = 0; k < 2 && lists[l][k] != NULL; k++) total += 4 + strlen(lists[l][k][i]);
      counts[2] += l == 2;
    }
  }
  uint8_t* payload = (*size = total) <= OCS_MAX_REST_PAYLOAD ? calloc(1, total) : NULL;
  if (payload == NULL) return NULL;
  ocs_put_u32(payload + OCS_REST_METHOD, (uint32_t)http->method);
  ocs_put_u32(payload + OCS_REST_GROUP_COUNT, counts[0]);
  ocs_put_u32(payload + OCS_REST_ARGUMENT_COUNT, counts[1]);
  ocs_put_u32(payload + OCS_REST_HEADER_COUNT, counts[2]);
  ocs_put_u32(payload + OCS_REST_BODY_SIZE, http->bodySize);
  uint8_t* next = put_string(payload + OCS_REST_REQUEST_FIXED_SIZE, url);
  for (int l = 0; l < 3; l++) {
    for (uint32_t i = 0; i < (l == 2 ? http->headersCount : counts[l]); i++) {
      if (l == 2 && !forwarded(lists[l][0][i])) continue;
      for (int k = 0; k < 2 && lists[l][k] != NULL; k++) next = put_string(next, lists[l][k][i]);
    }
  }
  if (http->bodySize > 0) memcpy(next, http->body, http->bodySize);
  return payload;
}

static void send_text_status(OrthancPluginRestOutput* output, uint16_t status, const char* text) {
  OrthancPluginSetHttpHeader(g_context, output, "Content-Type", "text/plain; charset=utf-8");
  OrthancPluginSendHttpStatus(g_context, output, status, text, (uint32_t)strlen(text));
}

/* Hands the daemon's answer to Orthanc: 200 as a buffer, 405 with its allowed methods, else a status. */
static OrthancPluginErrorCode send_rest_answer(OrthancPluginRestOutput* output, const char* what, const reply* r) {
  const uint8_t* data = r->data;
  uint32_t status = r->size >= OCS_REST_ANSWER_FIXED_SIZE ? ocs_get_u32(data + OCS_REST_ANSWER_STATUS) : 0;
  uint64_t type_length = status != 0 ? ocs_get_u32(data + OCS_REST_ANSWER_TYPE_LENGTH) : 0;
  uint64_t allow_length = status != 0 ? ocs_get_u32(data + OCS_REST_ANSWER_ALLOW_LENGTH) : 0;
  uint64_t used = OCS_REST_ANSWER_FIXED_SIZE + type_length + allow_length;
  if (status < 100 || status > 599 || type_length > TEXT_CAPACITY || allow_length > TEXT_CAPACITY || used > r->size) {
    log_message(LOG_ERROR, "cannot forward %s: protocol error: a malformed REST answer of %llu bytes", what,
                (unsigned long long)r->size);
    return OrthancPluginErrorCode_Plugin;
  }
  char type[TEXT_CAPACITY + 1], allow[TEXT_CAPACITY + 1];
  snprintf(type, sizeof type, "%.*s", (int)type_length, (const char*)data + OCS_REST_ANSWER_FIXED_SIZE);
  snprintf(allow, sizeof allow, "%.*s", (int)allow_length, (const char*)data + OCS_REST_ANSWER_FIXED_SIZE + type_length);
  const char* body = (const char*)data + used;
  if (status == 200) OrthancPluginAnswerBuffer(g_context, output, body, (uint32_t)(r->size - used), type);
  else if (status == 405) OrthancPluginSendMethodNotAllowed(g_context, output, allow);
  else {
    if (type[0] != '\0') OrthancPluginSetHttpHeader(g_context, output, "Content-Type", type);
    OrthancPluginSendHttpStatus(g_context, output, (uint16_t)status, body, (uint32_t)(r->size - used));
  }
  return OrthancPluginErrorCode_Success;
}

/* The callback of every route in REST_ROUTES: forwards the request to the daemon and its answer back. */
static OrthancPluginErrorCode rest_forward(OrthancPluginRestOutput* output, const char* url,
                                           const OrthancPluginHttpRequest* http) {
  char what[512];
  snprintf(what, sizeof what, "%s %s", METHODS[(unsigned)http->method < 5 ? http->method : 0], url);
  uint64_t size = 0;
  uint8_t* payload = encode_rest_request(url, http, &size);
  if (payload == NULL && size > OCS_MAX_REST_PAYLOAD) {
    send_text_status(output, 413, PLUGIN_NAME ": the request is too large\n");
    return OrthancPluginErrorCode_Success;
  }
  if (payload == NULL) return OrthancPluginErrorCode_NotEnoughMemory;
  reply answer = {NULL, 0};
  request rq = {.op = OCS_OP_REST, .verb = "forward", .uuid = "", .payload = payload, .size = size, .what = what,
                .answer = &answer, .serve = serve_callback, .no_retry = http->method != OrthancPluginHttpMethod_Get};
  int answered;
  OrthancPluginErrorCode code = call_daemon(&rq, &answered);
  free(payload);
  if (code == OrthancPluginErrorCode_Success) code = send_rest_answer(output, what, &answer);
  else if (!answered) {
    /* A load balancer's probe must fail: 503, with the cause in Orthanc's log (call_daemon logged it). */
    send_text_status(output, 503, PLUGIN_NAME ": the daemon is unreachable; Orthanc's log says why\n");
    code = OrthancPluginErrorCode_Success;
  }
  free(answer.data);
  return code;
}

void rest_register(void) {
  static const char* const routes[] = OCS_REST_ROUTES;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    OrthancPluginRegisterRestCallbackNoLock(g_context, routes[i], rest_forward);
  }
  OrthancPluginRegisterJobsUnserializer(g_context, unserialize_job);
}
