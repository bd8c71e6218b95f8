/* The daemon's REST routes, jobs, callbacks into Orthanc and the clock: docs/bridge.md#rest-routes-and-callbacks. */
#include "bridge.h"

static const char* const METHODS[] = {"?", "GET", "POST", "PUT", "DELETE"};
static int g_type_status; /* Content-Type on answers other than 200 (docs/bridge.md#orthanc-versions) */
static pthread_t g_ticker;
static int g_ticker_started;
static OrthancPluginErrorCode serve_callback(uint32_t kind, uint8_t* payload, uint64_t size, OrthancPluginMemoryBuffer* answer);

/* ---- Jobs: called one at a time by Orthanc, so no lock (docs/bridge.md#jobs) ---- */
typedef struct {
  uint8_t* answer; /* the daemon's last job answer, checked by job_answer() */
  char type[];
} daemon_job;

/* A copy of `size` bytes when they are a job answer (a status, a progress, two strings); else NULL. */
static uint8_t* job_answer(const uint8_t* data, uint64_t size) {
  uint32_t status = size > OCS_JOB_ANSWER_CONTENT ? ocs_get_u32(data + OCS_JOB_ANSWER_STATUS) : 0;
  uint8_t* copy = status >= OrthancPluginJobStepStatus_Success && status <= OrthancPluginJobStepStatus_Continue &&
                  data[size - 1] == '\0' && memchr(data + OCS_JOB_ANSWER_CONTENT, 0, size - OCS_JOB_ANSWER_CONTENT - 1)
                  ? malloc(size) : NULL;
  return copy != NULL ? memcpy(copy, data, size) : NULL;
}

static const char* job_content(void* job) { return (const char*)((daemon_job*)job)->answer + OCS_JOB_ANSWER_CONTENT; }
static const char* job_serialized(void* job) { return job_content(job) + strlen(job_content(job)) + 1; }
static float job_progress(void* job) { return (float)ocs_get_u32(((daemon_job*)job)->answer + OCS_JOB_ANSWER_PROGRESS) / OCS_PROGRESS_SCALE; }
static void job_finalize(void* job) { free(((daemon_job*)job)->answer), free(job); }
/* A step is short: nothing runs between two. */
static OrthancPluginErrorCode job_stop(void* job, OrthancPluginJobStopReason reason) { return (void)job, (void)reason, 0; }

/* The daemon's answer about the job (JOB_STEP, JOB_RESTORE); NULL: failed (logged), or not ours. */
static uint8_t* ask_daemon(uint32_t op, uint16_t flags, const char* type, const char* serialized) {
  char what[128], *payload = NULL;
  snprintf(what, sizeof what, "%s job %s", op == OCS_OP_JOB_STEP ? "a step of" : "the stored", type);
  int size = asprintf(&payload, "%s%c%s", type, '\0', serialized);
  OrthancPluginMemoryBuffer answer = {NULL, 0};
  request rq = {.op = op, .verb = op == OCS_OP_JOB_STEP ? "run" : "restore", .uuid = "", .payload = payload,
                .size = (uint64_t)size, .flags = flags, .what = what, .answer = &answer, .serve = serve_callback};
  uint8_t* job = size >= 0 && call_daemon(&rq, NULL) == 0 && answer.size > 0 ? job_answer(answer.data, answer.size) : NULL;
  if (job == NULL && answer.size > 0) log_message(LOG_ERROR, "%s: a malformed answer of %u bytes, or memory is short",
                                                  what, answer.size);
  free(size >= 0 ? payload : NULL), OrthancPluginFreeMemoryBuffer(g_context, &answer);
  return job;
}

/* Asks the daemon about the job and keeps its answer; returns the status it says. */
static OrthancPluginJobStepStatus update_job(daemon_job* job, uint32_t op, uint16_t flags) {
  uint8_t* answer = ask_daemon(op, flags, job->type, job_serialized(job));
  if (answer == NULL) return OrthancPluginJobStepStatus_Failure;
  free(job->answer), job->answer = answer;
  return (OrthancPluginJobStepStatus)ocs_get_u32(answer + OCS_JOB_ANSWER_STATUS);
}
static OrthancPluginJobStepStatus job_step(void* job) { return update_job(job, OCS_OP_JOB_STEP, 0); }

/* The daemon starts the job over at its next step: it knows how a job starts. */
static OrthancPluginErrorCode job_reset(void* job) {
  return update_job(job, OCS_OP_JOB_RESTORE, OCS_REQ_FLAG_START_OVER) != OrthancPluginJobStepStatus_Failure
             ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_InternalError;
}

/* A job of the daemon's, taking `answer` (job_answer()'s); NULL when there is none or memory is short. */
static OrthancPluginJob* create_job(const char* type, uint8_t* answer) {
  daemon_job* job = answer != NULL ? malloc(sizeof *job + strlen(type) + 1) : NULL;
  if (job != NULL) job->answer = answer, strcpy(job->type, type);
  OrthancPluginJob* created = job == NULL ? NULL : OrthancPluginCreateJob(g_context, job, job_finalize, job->type,
      job_progress, job_content, job_serialized, job_step, job_stop, job_reset);
  if (created == NULL && answer != NULL) log_message(LOG_ERROR, "cannot create a %s job: memory is short", type);
  if (created == NULL) free(job), free(answer);
  return created;
}

static OrthancPluginJob* unserialize_job(const char* type, const char* serialized) {
  return create_job(type, ask_daemon(OCS_OP_JOB_RESTORE, 0, type, serialized));
}

/* ---- Callbacks: request.serve (bridge.h) ---- */
static OrthancPluginErrorCode serve_callback(uint32_t kind, uint8_t* payload, uint64_t size, OrthancPluginMemoryBuffer* answer) {
  uint32_t word = size >= 4 ? ocs_get_u32(payload) : 0; /* the method, the priority, set or get, the record's size */
  char* text = size >= 4 ? (char*)payload + 4 : NULL;   /* the string after the word: a uri, a job's type, a uuid */
  uint64_t end = text != NULL && 5 + strlen(text) <= size ? 5 + strlen(text) : 0; /* what follows it; 0: no NUL */
  OrthancPluginErrorCode code = CALLBACK_MALFORMED;
  if (end > 0 && kind == OCS_CALLBACK_ORTHANC_REST && (word == OCS_METHOD_GET || word == OCS_METHOD_POST)) {
    code = word == OCS_METHOD_GET ? OrthancPluginRestApiGet(g_context, answer, text)
                                  : OrthancPluginRestApiPost(g_context, answer, text, payload + end, (uint32_t)(size - end));
  } else if (end > 0 && kind == OCS_CALLBACK_SUBMIT_JOB) {
    OrthancPluginJob* job = create_job(text, job_answer(payload + end, size - end));
    char* id = job != NULL ? OrthancPluginSubmitJob(g_context, job, (int32_t)word) : NULL;
    code = id != NULL && OrthancPluginCreateMemoryBuffer(g_context, answer, (uint32_t)strlen(id)) == 0
               ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_InternalError;
    if (code == OrthancPluginErrorCode_Success) memcpy(answer->data, id, strlen(id));
    else log_message(LOG_ERROR, "cannot submit a %s job to Orthanc's job engine", text);
    if (id != NULL) OrthancPluginFreeString(g_context, id);
  } else if (end > 0 && kind == OCS_CALLBACK_ATTACHMENT_RECORD) { /* Orthanc >= 1.12.8; word 1: set it to the rest */
    code = word ? OrthancPluginSetAttachmentCustomData(g_context, text, payload + end, (uint32_t)(size - end))
                : OrthancPluginGetAttachmentCustomData(g_context, answer, text);
  } else if (text != NULL && kind == OCS_CALLBACK_ADOPT && size - 4 >= word) { /* its record, then a DICOM file */
    OrthancPluginMemoryBuffer ids[2] = {{NULL, 0}, {NULL, 0}}; /* the instance's and the attachment's: not needed */
    OrthancPluginStoreStatus status = OrthancPluginStoreStatus_Failure;
    code = OrthancPluginAdoptDicomInstance(g_context, &ids[0], &ids[1], &status, payload + 4 + word, size - 4 - word,
                                           payload + 4, word);
    if (code == 0 && (code = OrthancPluginCreateMemoryBuffer(g_context, answer, 4)) == 0) ocs_put_u32(answer->data, status);
    OrthancPluginFreeMemoryBuffer(g_context, &ids[0]), OrthancPluginFreeMemoryBuffer(g_context, &ids[1]);
  }
  return code;
}

/* ---- REST routes, and the clock ---- */
/* An HTTP request as a REST payload, without its headers; -1 when memory is short. */
static int encode_rest_request(const char* url, const OrthancPluginHttpRequest* http, char** payload, size_t* size) {
  FILE* f = open_memstream(payload, size);
  uint32_t fixed[] = {http->method, http->groupsCount, http->getCount, 0, http->bodySize, 0};
  uint8_t bytes[sizeof fixed];
  if (f == NULL) return -1;
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) ocs_put_u32(bytes + 4 * i, fixed[i]);
  fwrite(bytes, sizeof bytes, 1, f), fprintf(f, "%s%c", url, 0);
  for (uint32_t i = 0; i < http->groupsCount; i++) fprintf(f, "%s%c", http->groups[i], 0);
  for (uint32_t i = 0; i < http->getCount; i++) fprintf(f, "%s%c%s%c", http->getKeys[i], 0, http->getValues[i], 0);
  fwrite(http->body, 1, http->bodySize, f);
  return fclose(f) == 0 ? 0 : (free(*payload), *payload = NULL, -1);
}

/* A status other than 200, with a body; Orthanc >= 1.12.2 adds a Content-Type of its own (type-status=0). */
static void send_status(OrthancPluginRestOutput* output, uint16_t status, const char* type, const void* body, uint32_t size) {
  if (g_type_status && type[0] != '\0') OrthancPluginSetHttpHeader(g_context, output, "Content-Type", type);
  OrthancPluginSendHttpStatus(g_context, output, status, body, size);
}

/* Every route's callback, and the clock's (`output` NULL): the request to the daemon, its answer back. */
static OrthancPluginErrorCode rest_forward(OrthancPluginRestOutput* output, const char* url, const OrthancPluginHttpRequest* http) {
  char what[512], *payload = NULL;
  snprintf(what, sizeof what, "%s %s", METHODS[(unsigned)http->method < 5 ? http->method : 0], url);
  size_t size = 0;
  OrthancPluginMemoryBuffer r = {NULL, 0};
  if (encode_rest_request(url, http, &payload, &size) != 0) return OrthancPluginErrorCode_NotEnoughMemory;
  request rq = {.op = OCS_OP_REST, .verb = "forward", .uuid = "", .payload = payload, .size = size,
                .what = what, .answer = &r, .serve = serve_callback, .no_retry = http->method != OrthancPluginHttpMethod_Get};
  int answered = 1, large = size > OCS_MAX_REST_PAYLOAD;
  OrthancPluginErrorCode code = large ? OrthancPluginErrorCode_Success : call_daemon(&rq, &answered);
  const uint8_t* a = r.data; /* the answer: status, text, body (protocol.ts) */
  uint32_t status = r.size >= OCS_REST_ANSWER_FIXED_SIZE && !a[OCS_REST_ANSWER_FIXED_SIZE - 1] ? ocs_get_u32(a + OCS_REST_ANSWER_STATUS) : 0;
  const char* text = (const char*)a + OCS_REST_ANSWER_TEXT;
  uint32_t length = status != 0 ? (uint32_t)(r.size - OCS_REST_ANSWER_FIXED_SIZE) : 0;
  /* Unreachable: 503, so that a load balancer's probe fails. */
  const char* refusal = large ? PLUGIN_NAME ": the request is too large\n"
                        : answered ? NULL : PLUGIN_NAME ": the daemon is unreachable; Orthanc's log says why\n";
  if (refusal != NULL) {
    if (output != NULL) send_status(output, large ? 413 : 503, "text/plain; charset=utf-8", refusal, (uint32_t)strlen(refusal));
    code = OrthancPluginErrorCode_Success;
  } else if (code == OrthancPluginErrorCode_Success && (status < 100 || status > 599)) {
    log_message(LOG_ERROR, "cannot forward %s: protocol error: a malformed REST answer of %llu bytes", what,
                (unsigned long long)r.size);
    code = OrthancPluginErrorCode_Plugin;
  } else if (code == OrthancPluginErrorCode_Success && output != NULL) {
    if (status == 200) OrthancPluginAnswerBuffer(g_context, output, a + OCS_REST_ANSWER_FIXED_SIZE, length, text);
    else if (status == 405) OrthancPluginSendMethodNotAllowed(g_context, output, text);
    else send_status(output, (uint16_t)status, text, a + OCS_REST_ANSWER_FIXED_SIZE, length);
  }
  free(payload), OrthancPluginFreeMemoryBuffer(g_context, &r);
  return code;
}

/* The clock: a POST OCS_TIER_TICK_PATH every OCS_TICK_INTERVAL_S seconds (docs/bridge.md#the-clock). */
static void* tick(void* unused) {
  OrthancPluginHttpRequest http = {.method = OrthancPluginHttpMethod_Post, .body = ""};
  for (int i = 1; !is_stopping(); i++) { /* the stop flag is read ten times a second */
    sleep_ms(100);
    if (i % (OCS_TICK_INTERVAL_S * 10) == 0) rest_forward(NULL, OCS_TIER_TICK_PATH, &http); /* logs its failures */
  }
  return unused;
}

void rest_register(int features) {
  g_type_status = features & FEATURE_TYPE_STATUS;
  static const char* const routes[] = OCS_REST_ROUTES;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) OrthancPluginRegisterRestCallbackNoLock(g_context, routes[i], rest_forward);
  OrthancPluginRegisterJobsUnserializer(g_context, unserialize_job);
  if (!(g_ticker_started = pthread_create(&g_ticker, NULL, tick, NULL) == 0))
    log_message(LOG_ERROR, "cannot create the clock's thread: TierSchedule will not run");
}
void rest_stop(void) {
  if (g_ticker_started) pthread_join(g_ticker, NULL);
  g_ticker_started = 0;
}
