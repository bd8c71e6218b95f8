/* The connection to the daemon: one socket per Orthanc thread (docs/bridge.md#the-connection). */
#include "bridge.h"
#include <fcntl.h>

#define CONNECT_RETRY_MS 100
#define RETRY_PAUSE_MS 250 /* a dying daemon may still accept, then reset (docs/bridge.md#the-connection) */
#define CHUNK (1u << 30)   /* at most per send() or recv() */
typedef struct { /* where requests go, as the last READY line said */
  char path[sizeof ((struct sockaddr_un*)0)->sun_path];
  int request_timeout_s, connect_timeout_s;
  unsigned generation; /* counts daemons that became ready */
} endpoint;
static pthread_rwlock_t g_lock = PTHREAD_RWLOCK_INITIALIZER;
static endpoint g_endpoint;
static int g_no_file_answers;      /* set once a file answer could not be opened (atomic) */
static pthread_key_t g_key;        /* its destructor closes the socket of an ending thread */
static int g_key_created;
static __thread int t_fd = -1;
static __thread unsigned t_generation;
/* How an exchange ended; BROKEN is worth one retry, NO_FILE asks again for the bytes. */
typedef enum { EXCHANGE_DONE, EXCHANGE_BROKEN, EXCHANGE_TIMEOUT, EXCHANGE_FAILED, EXCHANGE_NO_FILE } exchange_status;

static void close_at_thread_exit(void* value) { close((int)(intptr_t)value - 1); } /* its socket + 1: never NULL */
int connection_init(void) {
  int rc = pthread_key_create(&g_key, close_at_thread_exit);
  return g_key_created = rc == 0, rc;
}
static void connection_close(void) {
  if (t_fd >= 0 && g_key_created) pthread_setspecific(g_key, NULL);
  close_fd(&t_fd);
}
void connection_release(void) {
  if (g_key_created) connection_close(), pthread_key_delete(g_key); /* no destructor may run once unloaded */
  g_key_created = 0;
}

void connection_publish(const char* socket_path, int request_timeout_s, int connect_timeout_s) {
  pthread_rwlock_wrlock(&g_lock);
  snprintf(g_endpoint.path, sizeof g_endpoint.path, "%s", socket_path); /* its length was checked */
  g_endpoint.request_timeout_s = request_timeout_s, g_endpoint.connect_timeout_s = connect_timeout_s, g_endpoint.generation++;
  pthread_rwlock_unlock(&g_lock);
}

static void current_endpoint(endpoint* e) { pthread_rwlock_rdlock(&g_lock), *e = g_endpoint, pthread_rwlock_unlock(&g_lock); }
static void set_timeout(int fd, int option, int seconds) {
  setsockopt(fd, SOL_SOCKET, option, &(struct timeval){seconds, 0}, sizeof(struct timeval));
}

/* This thread's socket to the current daemon, connecting for ConnectTimeout; or -1 and the cause. */
static int connection_get(endpoint* e, char* cause, size_t cause_size) {
  current_endpoint(e);
  if (t_fd >= 0 && t_generation == e->generation) return t_fd;
  connection_close();
  for (int64_t deadline = now_ms() + (int64_t)e->connect_timeout_s * 1000;; current_endpoint(e)) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    memcpy(address.sun_path, e->path, sizeof address.sun_path);
    if ((t_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0) set_timeout(t_fd, SO_SNDTIMEO, e->connect_timeout_s);
    if (t_fd >= 0 && connect(t_fd, (struct sockaddr*)&address, sizeof address) == 0) {
      set_timeout(t_fd, SO_RCVTIMEO, e->request_timeout_s), set_timeout(t_fd, SO_SNDTIMEO, e->request_timeout_s);
      t_generation = e->generation, pthread_setspecific(g_key, (void*)(intptr_t)(t_fd + 1));
      return t_fd;
    }
    int error = errno;
    close_fd(&t_fd);
    if (is_stopping() || now_ms() >= deadline)
      return snprintf(cause, cause_size, "daemon unreachable at %s: %s", e->path, error_text(error)), -1;
    sleep_ms(CONNECT_RETRY_MS);
  }
}

int send_all(int fd, const void* data, uint64_t size) {
  for (const char* next = data; size > 0;) {
    ssize_t sent = send(fd, next, size > CHUNK ? CHUNK : (size_t)size, MSG_NOSIGNAL);
    if (sent < 0 && errno != EINTR) return errno;
    if (sent > 0) next += sent, size -= (uint64_t)sent;
  }
  return 0;
}

/* From a socket (offset < 0), or from a file at `offset`: 0, IO_EOF or an errno value. */
static int read_all(int fd, void* data, uint64_t size, int64_t offset, uint64_t* received) {
  for (*received = 0; *received < size;) {
    size_t want = size - *received > CHUNK ? CHUNK : (size_t)(size - *received);
    ssize_t n = offset < 0 ? recv(fd, (char*)data + *received, want, 0)
                           : pread(fd, (char*)data + *received, want, offset + (off_t)*received);
    if (n == 0 || (n < 0 && errno != EINTR)) return n == 0 ? IO_EOF : errno;
    if (n > 0) *received += (uint64_t)n;
  }
  return 0;
}

static exchange_status io_failure(int error, const endpoint* e, const char* doing, char* cause, size_t size) {
  if (error == EAGAIN || error == EWOULDBLOCK)
    return snprintf(cause, size, "no answer within %d s (OrthancCloudStorage.RequestTimeout) while %s", e->request_timeout_s,
                    doing), EXCHANGE_TIMEOUT;
  if (error == IO_EOF) snprintf(cause, size, "the daemon closed the connection while %s", doing);
  else snprintf(cause, size, "connection to the daemon lost while %s: %s", doing, error_text(error));
  return EXCHANGE_BROKEN;
}

/* Serves a callback whose header was just read: 0, an errno value, IO_EOF or CALLBACK_MALFORMED (and `cause`). */
static int serve(int fd, const request* rq, const uint8_t* header, char* cause, size_t cause_size) {
  uint32_t kind = ocs_get_u32(header + OCS_RESP_CODE);
  uint64_t size = ocs_get_u64(header + OCS_RESP_SIZE), received;
  uint8_t* payload = rq->serve != NULL && size <= OCS_MAX_CREATE_SIZE ? calloc(size + 1, 1) : NULL; /* NUL-ended */
  OrthancPluginMemoryBuffer answer = {NULL, 0};
  int error = payload != NULL ? read_all(fd, payload, size, -1, &received) : CALLBACK_MALFORMED;
  int code = error == 0 ? rq->serve(kind, payload, size, &answer) : 0;
  uint8_t answer_header[OCS_CALLBACK_HEADER_SIZE];
  ocs_put_u32(answer_header + OCS_RESP_MAGIC, OCS_CALLBACK_MAGIC), ocs_put_u32(answer_header + OCS_RESP_CODE, (uint32_t)code);
  ocs_put_u64(answer_header + OCS_RESP_SIZE, code == OrthancPluginErrorCode_Success ? answer.size : 0);
  if (error == 0 && code == CALLBACK_MALFORMED) error = code;
  if (error == CALLBACK_MALFORMED) snprintf(cause, cause_size, "protocol error: a malformed callback (kind %u, %llu bytes)%s",
                                            kind, (unsigned long long)size, rq->serve ? "" : " in answer to a storage request");
  if (error == 0) error = send_all(fd, answer_header, sizeof answer_header);
  if (error == 0 && code == OrthancPluginErrorCode_Success) error = send_all(fd, answer.data, answer.size);
  if (answer.data != NULL) OrthancPluginFreeMemoryBuffer(g_context, &answer);
  free(payload);
  return error;
}

/* The `size` bytes of a success answer, from the socket `fd` or from `file` at `offset`: freed if incomplete. */
static exchange_status receive_bytes(int fd, const request* rq, const endpoint* e, uint64_t size, int file, int64_t offset,
                                     OrthancPluginErrorCode* code, char* cause, size_t cause_size) {
  uint64_t received;
  int error = 0;
  if (rq->op == OCS_OP_READ_RANGE && size != rq->target->size)
    return *code = OrthancPluginErrorCode_BadRange, snprintf(cause, cause_size, "the daemon answered %llu bytes for a range "
           "of %llu bytes", (unsigned long long)size, (unsigned long long)rq->target->size), EXCHANGE_FAILED;
  if (rq->op == OCS_OP_READ_WHOLE) error = OrthancPluginCreateMemoryBuffer64(g_context, rq->target, size);
  else if (rq->op != OCS_OP_READ_RANGE) error = size > OCS_MAX_REST_PAYLOAD || OrthancPluginCreateMemoryBuffer(g_context, rq->answer, (uint32_t)size);
  if (error != 0) return *code = OrthancPluginErrorCode_NotEnoughMemory, snprintf(cause, cause_size, "cannot take an "
                         "answer of %llu bytes", (unsigned long long)size), EXCHANGE_FAILED;
  if ((error = read_all(file >= 0 ? file : fd, rq->target ? rq->target->data : rq->answer->data, size, offset, &received)) == 0)
    return *code = OrthancPluginErrorCode_Success, EXCHANGE_DONE;
  if (rq->op == OCS_OP_READ_WHOLE) OrthancPluginFreeMemoryBuffer64(g_context, rq->target), *rq->target = (OrthancPluginMemoryBuffer64){NULL, 0};
  if (rq->answer != NULL) OrthancPluginFreeMemoryBuffer(g_context, rq->answer), *rq->answer = (OrthancPluginMemoryBuffer){NULL, 0};
  char doing[128];
  snprintf(doing, sizeof doing, "%s (%llu of %llu bytes)", file >= 0 ? "reading its file" : "receiving the answer",
           (unsigned long long)received, (unsigned long long)size);
  if (file >= 0 && error == IO_EOF) /* the file was cut short since the daemon opened it: worth a retry too */
    return snprintf(cause, cause_size, "the daemon's file ended early while %s", doing), EXCHANGE_BROKEN;
  return io_failure(error, e, doing, cause, cause_size);
}

/* One request and its answer, callbacks served on the way (docs/bridge.md#file-answers-and-their-fallback). */
static exchange_status exchange(int fd, const request* rq, const endpoint* e, const uint8_t* header,
                                OrthancPluginErrorCode* code, char* cause, size_t cause_size) {
  uint8_t response[OCS_FILE_ANSWER_SIZE]; /* a response's or a callback's header, or a file answer */
  uint64_t received;
  int error = send_all(fd, header, OCS_REQUEST_HEADER_SIZE), file;
  if (error == 0 && rq->payload != NULL) error = send_all(fd, rq->payload, rq->size);
  if (error == 0 && rq->record_data != NULL) error = send_all(fd, rq->record_data, rq->record);
  if (error != 0) return io_failure(error, e, "sending the request", cause, cause_size);
  while ((error = read_all(fd, response, OCS_RESPONSE_HEADER_SIZE, -1, &received)) == 0 &&
         ocs_get_u32(response + OCS_RESP_MAGIC) == OCS_CALLBACK_MAGIC) {
    if ((error = serve(fd, rq, response, cause, cause_size)) == CALLBACK_MALFORMED) return EXCHANGE_FAILED;
    if (error != 0) return io_failure(error, e, "serving a callback", cause, cause_size);
  }
  uint32_t magic = ocs_get_u32(response + OCS_RESP_MAGIC);
  int32_t answer = (int32_t)ocs_get_u32(response + OCS_RESP_CODE); /* an Orthanc code (test/daemon/protocol-header) */
  uint64_t size = ocs_get_u64(response + OCS_RESP_SIZE);
  if (error == 0 && magic == OCS_FILE_MAGIC && rq->target != NULL)
    error = read_all(fd, response + OCS_RESPONSE_HEADER_SIZE, OCS_FILE_ANSWER_SIZE - OCS_RESPONSE_HEADER_SIZE, -1, &received);
  if (error != 0) return io_failure(error, e, "waiting for the answer", cause, cause_size);
  if (magic == OCS_FILE_MAGIC && rq->target != NULL) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%u/fd/%d", ocs_get_u32(response + OCS_FILE_AT_PID), (int)ocs_get_u32(response + OCS_FILE_AT_FD));
    if ((file = open(path, O_RDONLY | O_CLOEXEC)) < 0 && !__atomic_exchange_n(&g_no_file_answers, 1, __ATOMIC_RELAXED))
      log_message(LOG_WARNING, "cannot open %s (%s): the daemon sends the bytes of reads from now on", path, error_text(errno));
    if (file < 0) return EXCHANGE_NO_FILE;
    exchange_status status = receive_bytes(fd, rq, e, ocs_get_u64(response + OCS_FILE_AT_SIZE), file,
                                           (int64_t)ocs_get_u64(response + OCS_FILE_AT_OFFSET), code, cause, cause_size);
    return close(file), status;
  }
  if (magic != OCS_MAGIC) return snprintf(cause, cause_size, "protocol error: bad magic in the daemon's answer"), EXCHANGE_FAILED;
  if (answer != OrthancPluginErrorCode_Success) { /* the daemon logged the message that follows: it is not read */
    if (size > 0) connection_close();
    return *code = (OrthancPluginErrorCode)answer, EXCHANGE_DONE;
  }
  if (rq->target != NULL || rq->answer != NULL) return receive_bytes(fd, rq, e, size, -1, -1, code, cause, cause_size);
  if (size == 0) return *code = OrthancPluginErrorCode_Success, EXCHANGE_DONE;
  snprintf(cause, cause_size, "protocol error: %llu unexpected bytes after a success", (unsigned long long)size);
  return EXCHANGE_FAILED;
}

/* Returns the daemon's answer; `*answered`: whether it answered, even with an error. Retries: docs/bridge.md. */
OrthancPluginErrorCode call_daemon(const request* rq, int* answered) {
  uint8_t header[OCS_REQUEST_HEADER_SIZE] = {0};
  char cause[512 + sizeof g_endpoint.path] = "";
  OrthancPluginErrorCode code = OrthancPluginErrorCode_StorageAreaPlugin;
  exchange_status status = EXCHANGE_BROKEN;
  int attempt = 1, is_read = rq->op == OCS_OP_READ_WHOLE || rq->op == OCS_OP_READ_RANGE;
  ocs_put_u32(header + OCS_REQ_MAGIC, OCS_MAGIC), ocs_put_u32(header + OCS_REQ_OP, rq->op);
  ocs_put_u32(header + OCS_REQ_CONTENT_TYPE, (uint32_t)rq->type);
  ocs_put_u64(header + OCS_REQ_SIZE, rq->size), ocs_put_u64(header + OCS_REQ_START, rq->start);
  if (rq->record > OCS_MAX_RECORD_SIZE) snprintf(cause, sizeof cause, "its custom data takes %u bytes, more than the %d the daemon accepts", rq->record, OCS_MAX_RECORD_SIZE);
  else if (strlen(rq->uuid) > OCS_UUID_FIELD_SIZE) snprintf(cause, sizeof cause, "the uuid is longer than %d bytes", OCS_UUID_FIELD_SIZE);
  else memcpy(header + OCS_REQ_UUID, rq->uuid, strlen(rq->uuid));
  for (endpoint e; cause[0] == '\0'; attempt++) {
    int file_answer = is_read && !__atomic_load_n(&g_no_file_answers, __ATOMIC_RELAXED);
    ocs_put_u32(header + OCS_REQ_FLAGS, rq->flags | (file_answer ? OCS_REQ_FLAG_FILE_ANSWER : 0) | rq->record << 16);
    int fd = connection_get(&e, cause, sizeof cause);
    if (fd < 0 || (status = exchange(fd, rq, &e, header, &code, cause, sizeof cause)) == EXCHANGE_DONE) break;
    if (status == EXCHANGE_NO_FILE) { attempt--; continue; } /* the same request, for the bytes: not a retry */
    connection_close();
    if (status != EXCHANGE_FAILED) code = OrthancPluginErrorCode_StorageAreaPlugin;
    if (status != EXCHANGE_BROKEN || attempt == 2 || rq->no_retry) break;
    sleep_ms(RETRY_PAUSE_MS), cause[0] = '\0';
  }
  if (answered != NULL) *answered = status == EXCHANGE_DONE || status == EXCHANGE_FAILED;
  const char* retried = attempt == 2 ? " (after a retry on a new connection)" : "";
  if (status != EXCHANGE_DONE && rq->what != NULL) log_message(LOG_ERROR, "cannot %s %s: %s%s", rq->verb, rq->what, cause, retried);
  else if (status != EXCHANGE_DONE) log_message(LOG_ERROR, "cannot %s attachment %s (content type %d): %s%s", rq->verb, rq->uuid,
                                                 (int)rq->type, cause, retried);
  return code;
}
