/*
 * The daemon's calls into Orthanc (callbacks, protocol.h) and the jobs it submits. A callback runs on the
 * Orthanc thread that is waiting for the daemon's answer, so it may call the REST API freely. A job keeps
 * the state the daemon gave it (opaque JSON) and sends it with each step (JOB_STEP): the daemon keeps
 * nothing between steps, and Orthanc can store the job and run it again after a restart.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge-internal.h"
#include "json-scan.h"
#include "protocol.h"

/* In serialized jobs, so that the unserializer recognises ours (the official plugin's are different). */
#define SERIALIZED_FORMAT "orthanc-cloud-storage/1"

/* A cursor over a callback payload; every read checks that the bytes are there. */
typedef struct {
  const uint8_t* next;
  const uint8_t* end;
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
  if (take_u32(c, &length) != 0 || (uint64_t)(c->end - c->next) < length) return NULL;
  char* text = malloc((size_t)length + 1);
  if (text == NULL) return NULL;
  memcpy(text, c->next, length);
  text[length] = '\0';
  c->next += length;
  return text;
}

static char* copy_text(const char* start, const char* end) {
  char* text = malloc((size_t)(end - start) + 1);
  if (text == NULL) return NULL;
  memcpy(text, start, (size_t)(end - start));
  text[end - start] = '\0';
  return text;
}

/* ---------------------------------------------------------------------------------------------- */
/* Jobs                                                                                           */

typedef struct {
  pthread_mutex_t lock; /* Orthanc reads content and progress from other threads than the step's */
  char* type;
  char* content;
  char* state;
  char* initial_state; /* for a reset: the job starts over */
  float progress;
} daemon_job;

/* The text last handed to Orthanc by this thread: valid until its next call, as Orthanc requires. */
static __thread char* t_handed;

static const char* hand_over(char* text) {
  free(t_handed);
  t_handed = text;
  return text;
}

static void job_finalize(void* p) {
  daemon_job* job = p;
  pthread_mutex_destroy(&job->lock);
  free(job->type);
  free(job->content);
  free(job->state);
  free(job->initial_state);
  free(job);
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

static const char* job_serialized(void* p) {
  daemon_job* job = p;
  pthread_mutex_lock(&job->lock);
  char* text = NULL;
  if (asprintf(&text, "{\"Format\":\"" SERIALIZED_FORMAT "\",\"Content\":%s,\"State\":%s,\"InitialState\":%s}",
               job->content, job->state, job->initial_state) < 0) {
    text = NULL;
  }
  pthread_mutex_unlock(&job->lock);
  return hand_over(text); /* NULL: Orthanc does not store the job */
}

static OrthancPluginErrorCode job_stop(void* p, OrthancPluginJobStopReason reason) {
  (void)p;
  (void)reason; /* a step is short (the daemon returns after about a second): nothing runs between steps */
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
  if (text == NULL) return -1;
  if (text[0] == '\0') {
    free(text);
    return 0;
  }
  free(*field);
  *field = text;
  return 0;
}

static OrthancPluginJobStepStatus job_step(void* p) {
  daemon_job* job = p;
  pthread_mutex_lock(&job->lock);
  char* state = strdup(job->state);
  pthread_mutex_unlock(&job->lock);
  if (state == NULL) return OrthancPluginJobStepStatus_Failure;

  char what[128];
  snprintf(what, sizeof what, "a step of job %s", job->type);
  rest_answer answer = {NULL, 0};
  request rq = {.op = OCS_OP_JOB_STEP, .verb = "run", .uuid = "", .payload = state, .size = strlen(state),
                .http = what, .answer = &answer};
  OrthancPluginErrorCode code = call_daemon(&rq, NULL); /* logs its failures */
  free(state);
  OrthancPluginJobStepStatus status = OrthancPluginJobStepStatus_Failure;
  if (code == OrthancPluginErrorCode_Success) {
    cursor c = {answer.data, answer.data + answer.size};
    uint32_t step_status = 0, progress = 0;
    pthread_mutex_lock(&job->lock);
    int malformed = take_u32(&c, &step_status) != 0 || take_u32(&c, &progress) != 0 ||
                    update_from(&c, &job->content) != 0 || update_from(&c, &job->state) != 0 || c.next != c.end ||
                    step_status < OrthancPluginJobStepStatus_Success ||
                    step_status > OrthancPluginJobStepStatus_Continue;
    if (!malformed) job->progress = progress > 1000000 ? 1.0f : (float)progress / 1000000.0f;
    pthread_mutex_unlock(&job->lock);
    if (malformed) log_message(LOG_ERROR, "%s: protocol error: a malformed answer of %llu bytes", what,
                               (unsigned long long)answer.size);
    else status = (OrthancPluginJobStepStatus)step_status;
  }
  free(answer.data);
  return status;
}

/* A job of the daemon's, ready to submit; NULL when memory is short. Takes none of its arguments. */
static OrthancPluginJob* create_job(const char* type, const char* content, const char* state,
                                    const char* initial_state) {
  daemon_job* job = calloc(1, sizeof *job);
  if (job == NULL) return NULL;
  pthread_mutex_init(&job->lock, NULL);
  job->type = strdup(type);
  job->content = strdup(content);
  job->state = strdup(state);
  job->initial_state = strdup(initial_state);
  OrthancPluginJob* created = NULL;
  if (job->type != NULL && job->content != NULL && job->state != NULL && job->initial_state != NULL) {
    created = OrthancPluginCreateJob(g_context, job, job_finalize, job->type, job_progress, job_content,
                                     job_serialized, job_step, job_stop, job_reset);
  }
  if (created == NULL) job_finalize(job);
  return created;
}

/* The raw text of member `key` of `object`, malloc()ed; NULL when absent or out of memory. */
static char* member_text(const json_value* object, const char* key, json_type type) {
  json_value value;
  if (!json_object_get(object, key, &value) || value.type != type) return NULL;
  return copy_text(value.start, value.end);
}

/* Orthanc calls this at start-up for each job it stored; only jobs serialized by job_serialized() are ours. */
static OrthancPluginJob* unserialize_job(const char* type, const char* serialized) {
  json_value root, format;
  char error[128];
  if (json_parse(serialized, strlen(serialized), &root, error, sizeof error) != 0 || root.type != JSON_OBJECT ||
      !json_object_get(&root, "Format", &format) || format.type != JSON_STRING) {
    return NULL;
  }
  char* format_text = json_string_decode(&format, NULL);
  int ours = format_text != NULL && strcmp(format_text, SERIALIZED_FORMAT) == 0;
  free(format_text);
  if (!ours) return NULL;
  char* content = member_text(&root, "Content", JSON_OBJECT);
  char* state = member_text(&root, "State", JSON_OBJECT);
  char* initial_state = member_text(&root, "InitialState", JSON_OBJECT);
  OrthancPluginJob* job = NULL;
  if (content != NULL && state != NULL && initial_state != NULL) job = create_job(type, content, state, initial_state);
  if (job == NULL) log_message(LOG_ERROR, "cannot restore a stored %s job: its serialization is incomplete", type);
  free(content);
  free(state);
  free(initial_state);
  return job;
}

void register_job_unserializer(void) { OrthancPluginRegisterJobsUnserializer(g_context, unserialize_job); }

/* ---------------------------------------------------------------------------------------------- */
/* Callbacks                                                                                      */

static const char* const CALLBACK_METHODS[] = {"?", "GET", "POST", "PUT", "DELETE"};

/* Orthanc's built-in REST API; `*answer` receives the body (free it with OrthancPluginFreeMemoryBuffer). */
static OrthancPluginErrorCode call_orthanc(uint32_t method, const char* uri, const uint8_t* body, uint64_t size,
                                           OrthancPluginMemoryBuffer* answer) {
  switch (method) {
    case OrthancPluginHttpMethod_Get:
      return OrthancPluginRestApiGet(g_context, answer, uri);
    case OrthancPluginHttpMethod_Post:
      return OrthancPluginRestApiPost(g_context, answer, uri, body, (uint32_t)size);
    case OrthancPluginHttpMethod_Put:
      return OrthancPluginRestApiPut(g_context, answer, uri, body, (uint32_t)size);
    case OrthancPluginHttpMethod_Delete:
      return OrthancPluginRestApiDelete(g_context, uri);
    default:
      return OrthancPluginErrorCode_ParameterOutOfRange;
  }
}

static int send_callback_answer(int fd, int32_t code, const void* body, uint64_t size) {
  uint8_t header[OCS_CALLBACK_HEADER_SIZE];
  ocs_put_u32(header, OCS_CALLBACK_MAGIC);
  ocs_put_u32(header + 4, (uint32_t)code);
  ocs_put_u64(header + 8, size);
  int error = send_all(fd, header, sizeof header);
  return error == 0 && size > 0 ? send_all(fd, body, size) : error;
}

static int serve_rest_callback(int fd, cursor* c, char* cause, size_t cause_size) {
  uint32_t method;
  char* uri = take_u32(c, &method) == 0 ? take_string(c) : NULL;
  if (uri == NULL || method < 1 || method > 4) {
    free(uri);
    snprintf(cause, cause_size, "protocol error: a malformed REST callback");
    return CALLBACK_MALFORMED;
  }
  OrthancPluginMemoryBuffer answer = {NULL, 0};
  OrthancPluginErrorCode code = call_orthanc(method, uri, c->next, (uint64_t)(c->end - c->next), &answer);
  if (code != OrthancPluginErrorCode_Success && code != OrthancPluginErrorCode_UnknownResource) {
    log_message(LOG_WARNING, "the daemon's call %s %s failed inside Orthanc: error %d", CALLBACK_METHODS[method], uri,
                (int)code);
  }
  free(uri);
  int error = send_callback_answer(fd, code, answer.data, code == OrthancPluginErrorCode_Success ? answer.size : 0);
  if (answer.data != NULL) OrthancPluginFreeMemoryBuffer(g_context, &answer);
  return error;
}

static int serve_job_callback(int fd, cursor* c, char* cause, size_t cause_size) {
  uint32_t priority;
  char* type = take_u32(c, &priority) == 0 ? take_string(c) : NULL;
  char* content = type != NULL ? take_string(c) : NULL;
  char* state = content != NULL ? take_string(c) : NULL;
  if (state == NULL || c->next != c->end) {
    free(type);
    free(content);
    free(state);
    snprintf(cause, cause_size, "protocol error: a malformed job submission");
    return CALLBACK_MALFORMED;
  }
  OrthancPluginJob* job = create_job(type, content, state, state);
  char* id = job != NULL ? OrthancPluginSubmitJob(g_context, job, (int32_t)priority) : NULL;
  if (id == NULL) log_message(LOG_ERROR, "cannot submit a %s job to Orthanc's job engine", type);
  free(type);
  free(content);
  free(state);
  int error = id != NULL ? send_callback_answer(fd, OrthancPluginErrorCode_Success, id, strlen(id))
                         : send_callback_answer(fd, OrthancPluginErrorCode_InternalError, NULL, 0);
  if (id != NULL) OrthancPluginFreeString(g_context, id);
  return error;
}

int serve_callback(int fd, const uint8_t* header, char* cause, size_t cause_size) {
  uint32_t kind = ocs_get_u32(header + 4);
  uint64_t size = ocs_get_u64(header + 8);
  if (size > OCS_MAX_REST_PAYLOAD || (kind != OCS_CALLBACK_ORTHANC_REST && kind != OCS_CALLBACK_SUBMIT_JOB)) {
    snprintf(cause, cause_size, "protocol error: a callback of kind %u and %llu bytes", kind, (unsigned long long)size);
    return CALLBACK_MALFORMED;
  }
  uint8_t* payload = malloc(size > 0 ? size : 1);
  if (payload == NULL) {
    snprintf(cause, cause_size, "cannot allocate %llu bytes for a callback", (unsigned long long)size);
    return CALLBACK_MALFORMED;
  }
  uint64_t received;
  int error = recv_all(fd, payload, size, &received);
  if (error == 0) {
    cursor c = {payload, payload + size};
    error = kind == OCS_CALLBACK_ORTHANC_REST ? serve_rest_callback(fd, &c, cause, cause_size)
                                             : serve_job_callback(fd, &c, cause, cause_size);
  }
  free(payload);
  return error;
}
