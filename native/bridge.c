/*
 * orthanc-cloud-storage: the Orthanc plugin ("bridge"). It holds no storage logic: it spawns the Node
 * daemon (src/daemon/main.ts), hands it Orthanc's merged configuration, waits for its start-up
 * handshake, registers Orthanc's storage area and the daemon's REST routes, and forwards every storage
 * call and every HTTP request on those routes to the daemon over a Unix socket, with the wire protocol
 * of src/daemon/protocol.ts (mirrored in protocol.h). A supervisor thread restarts the daemon when it
 * dies; a log thread copies its stderr into Orthanc's log.
 *
 * Threads:
 * - Orthanc's threads (HTTP, DICOM, jobs: ~50 at once) call the storage and REST callbacks
 *   concurrently. Each keeps its own connection to the daemon (t_fd), reopened when the daemon was
 *   restarted.
 * - The supervisor waits for the daemon to exit and restarts it (after Initialize returned).
 * - The log thread forwards the daemon's stderr lines (one pipe shared by every daemon started).
 *
 * Shut-down: g_stop_pipe's write end is closed, which wakes every poll() on its read end at once.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <orthanc/OrthancCPlugin.h>

#include "bridge-internal.h"
#include "json-scan.h"
#include "protocol.h"

#ifndef OCS_VERSION
#define OCS_VERSION "0.1.0"
#endif

#define DESCRIPTION                                                                                  \
  "Orthanc storage area on S3, Azure Blob Storage, Google Cloud Storage or a local folder, "         \
  "compatible with the official object-storage plugins (served by a Node.js daemon)"
#define SECTION "OrthancCloudStorage"
#define DEFAULT_DAEMON_SCRIPT "../dist/src/daemon/main.js" /* from the folder of this library */
#define DAEMON_LOG_PREFIX PLUGIN_NAME " daemon: "

#define LINE_CAPACITY 4096            /* longest line read from the daemon; longer ones are cut */
#define ERROR_MESSAGE_CAPACITY 4096   /* longest error message logged from a response */
#define MAX_SECONDS 2147483           /* a timeout in milliseconds must fit in an int */
#define STOP_GRACE_S 5                /* shut-down, or after DISABLED: time to exit once stdin is closed */
#define FAILED_GRACE_S 1              /* after a failed start */
#define TERM_GRACE_S 2                /* after SIGTERM, before SIGKILL */
#define RESTART_FIRST_DELAY_S 1
#define RESTART_MAX_DELAY_S 30
#define CONNECT_RETRY_MS 100
#define RETRY_PAUSE_MS 250            /* at most, before retrying a broken connection: see call_daemon() */
#define REST_TEXT_CAPACITY 256        /* longest content type or list of allowed methods in a REST answer */
#define SOCKET_PATH_CAPACITY sizeof(((struct sockaddr_un*)0)->sun_path)

/* protocol.h mirrors protocol.ts; these codes must also be Orthanc's. */
#define SAME_CODE(ours, orthancs) _Static_assert((int)(ours) == (int)(orthancs), #orthancs)
SAME_CODE(OCS_CODE_SUCCESS, OrthancPluginErrorCode_Success);
SAME_CODE(OCS_CODE_INTERNAL_ERROR, OrthancPluginErrorCode_InternalError);
SAME_CODE(OCS_CODE_NOT_ENOUGH_MEMORY, OrthancPluginErrorCode_NotEnoughMemory);
SAME_CODE(OCS_CODE_PARAMETER_OUT_OF_RANGE, OrthancPluginErrorCode_ParameterOutOfRange);
SAME_CODE(OCS_CODE_INEXISTENT_FILE, OrthancPluginErrorCode_InexistentFile);
SAME_CODE(OCS_CODE_CANNOT_WRITE_FILE, OrthancPluginErrorCode_CannotWriteFile);
SAME_CODE(OCS_CODE_BAD_FILE_FORMAT, OrthancPluginErrorCode_BadFileFormat);
SAME_CODE(OCS_CODE_FULL_STORAGE, OrthancPluginErrorCode_FullStorage);
SAME_CODE(OCS_CODE_CORRUPTED_FILE, OrthancPluginErrorCode_CorruptedFile);
SAME_CODE(OCS_CODE_STORAGE_AREA_PLUGIN, OrthancPluginErrorCode_StorageAreaPlugin);
SAME_CODE(OCS_CODE_BAD_RANGE, OrthancPluginErrorCode_BadRange);

/* ---------------------------------------------------------------------------------------------- */
/* Global state                                                                                   */

typedef struct {
  char* node;          /* the Node.js program: a name looked up in PATH, or a path */
  char* daemon_script; /* dist/src/daemon/main.js */
  int startup_timeout_s;
  int request_timeout_s;
  int connect_timeout_s;
} settings;

/* A line being read from a pipe of the daemon. */
typedef struct {
  char text[LINE_CAPACITY + 1];
  size_t length;
} line_buffer;

/* One daemon process and the parent's ends of its pipes. */
typedef struct {
  pid_t pid;      /* -1: none */
  int pidfd;      /* readable once the process ended; -1 when the kernel lacks pidfd_open() */
  int stdin_fd;   /* write end of its stdin: the configuration, then the lifeline */
  int stdout_fd;  /* read end of its stdout: the handshake */
  line_buffer stdout_line;
  int reaped;
  int status;     /* from waitpid() once reaped; -1 if unknown */
} daemon_process;

typedef enum { OUTCOME_FAILED = 0, OUTCOME_READY, OUTCOME_DISABLED } handshake_outcome;

/* What a daemon answered at start-up, or why it did not. */
typedef struct {
  int seen; /* a handshake line arrived */
  handshake_outcome outcome;
  int range;
  char socket_path[SOCKET_PATH_CAPACITY];
  char reason[LINE_CAPACITY + 512];
} handshake;

OrthancPluginContext* g_context;
static settings g_settings;
static char* g_configuration;         /* Orthanc's merged configuration, given to every daemon */
static size_t g_configuration_size;   /* including its final NUL byte, which is sent too */

static int g_stopping;                       /* Orthanc is stopping (atomic) */
static int g_stop_pipe[2] = {-1, -1};        /* write end closed when Orthanc is stopping */
static int g_stderr_pipe[2] = {-1, -1};      /* the daemons' stderr, read by the log thread */
static int g_log_stop_pipe[2] = {-1, -1};    /* write end closed to end the log thread */
static pthread_t g_log_thread, g_supervisor;
static int g_log_thread_started, g_supervisor_started;
static daemon_process g_daemon = {.pid = -1, .pidfd = -1, .stdin_fd = -1, .stdout_fd = -1};

/* Where requests go; the supervisor changes it after a restart. */
static pthread_rwlock_t g_endpoint_lock = PTHREAD_RWLOCK_INITIALIZER;
static char g_socket_path[SOCKET_PATH_CAPACITY];
static unsigned g_generation; /* counts daemons that became ready; never reset */
static unsigned g_dead_generation; /* the generation of the last daemon seen to exit (atomic) */
static int g_range_supported;

/* This thread's connection, and the generation of the daemon it reaches. */
static pthread_key_t g_connection_key; /* its destructor closes the connection of an ending thread */
static int g_connection_key_created;
static __thread int t_fd = -1;
static __thread unsigned t_generation;

extern char** environ;

/* ---------------------------------------------------------------------------------------------- */
/* Small helpers                                                                                  */

static void log_text(log_level level, const char* text) {
  if (g_context == NULL) return;
  if (level == LOG_INFO) OrthancPluginLogInfo(g_context, text);
  else if (level == LOG_WARNING) OrthancPluginLogWarning(g_context, text);
  else OrthancPluginLogError(g_context, text);
}

/* Logs "orthanc-cloud-storage: <formatted text>". */
void log_message(log_level level, const char* format, ...) {
  char text[2 * LINE_CAPACITY];
  int prefix = snprintf(text, sizeof text, "%s: ", PLUGIN_NAME);
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(text + prefix, sizeof text - (size_t)prefix, format, arguments);
  va_end(arguments);
  log_text(level, text);
}

static const char* error_text(int error) {
  const char* text = strerrordesc_np(error); /* thread-safe, unlike strerror() */
  return text != NULL ? text : "unknown error";
}

static int64_t now_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
  struct timespec left = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

static void close_fd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static int is_stopping(void) { return __atomic_load_n(&g_stopping, __ATOMIC_ACQUIRE); }

/* Marks Orthanc as stopping and wakes every thread that polls g_stop_pipe. */
static void announce_stop(void) {
  __atomic_store_n(&g_stopping, 1, __ATOMIC_RELEASE);
  close_fd(&g_stop_pipe[1]);
}

/* Waits for up to `ms` unless Orthanc is stopping; returns 0 when it is. */
static int pause_unless_stopping(int64_t ms) {
  struct pollfd stop = {g_stop_pipe[0], POLLIN, 0};
  int64_t deadline = now_ms() + ms;
  for (int64_t left = ms; left > 0 && !is_stopping(); left = deadline - now_ms()) poll(&stop, 1, (int)left);
  return !is_stopping();
}

/* A close-on-exec pipe whose ends are above 2, so that they cannot collide with a child's 0-2. */
static int make_pipe(int ends[2]) {
  if (pipe2(ends, O_CLOEXEC) != 0) return -1;
  for (int i = 0; i < 2; i++) {
    if (ends[i] > 2) continue;
    int moved = fcntl(ends[i], F_DUPFD_CLOEXEC, 3);
    int error = errno;
    close(ends[i]);
    ends[i] = moved;
    if (moved < 0) {
      close_fd(&ends[1 - i]);
      errno = error;
      return -1;
    }
  }
  return 0;
}

static void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* write() that cannot raise SIGPIPE (Orthanc may not ignore it yet at start-up): EPIPE instead. */
static ssize_t write_without_sigpipe(int fd, const void* data, size_t size) {
  sigset_t sigpipe, previous;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigpipe, &previous);
  ssize_t written = write(fd, data, size);
  int error = errno;
  if (written < 0 && error == EPIPE) {
    struct timespec now = {0, 0};
    sigtimedwait(&sigpipe, NULL, &now); /* consume the SIGPIPE left pending for this thread */
  }
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  errno = error;
  return written;
}

/* ---------------------------------------------------------------------------------------------- */
/* Lines from the daemon's pipes                                                                  */

typedef void (*line_handler)(const char* line, void* context);

/* Hands the buffered line over (without "\r") and empties the buffer. */
static void emit_line(line_buffer* buffer, line_handler handler, void* context) {
  size_t length = buffer->length;
  if (length > 0 && buffer->text[length - 1] == '\r') length--;
  buffer->text[length] = '\0';
  buffer->length = 0;
  handler(buffer->text, context);
}

/*
 * Reads what a non-blocking pipe holds and hands every complete line over; a line longer than
 * LINE_CAPACITY is handed over in pieces. Returns 1 while the pipe stays open, 0 at its end (after
 * handing over an unfinished last line).
 */
static int read_lines(int fd, line_buffer* buffer, line_handler handler, void* context) {
  char chunk[4096];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 1;
    if (n <= 0) {
      if (buffer->length > 0) emit_line(buffer, handler, context);
      return 0;
    }
    for (ssize_t i = 0; i < n; i++) {
      if (chunk[i] == '\n') {
        emit_line(buffer, handler, context);
        continue;
      }
      if (buffer->length == LINE_CAPACITY) emit_line(buffer, handler, context);
      buffer->text[buffer->length++] = chunk[i];
    }
  }
}

/* A stderr line "I text", "W text" or "E text" goes to Orthanc's log at that level; others as errors. */
static void forward_log_line(const char* line, void* unused) {
  (void)unused;
  if (line[0] == '\0') return;
  log_level level = LOG_ERROR;
  const char* text = line;
  if (line[1] == ' ' || line[1] == '\0') {
    if (line[0] == OCS_LOG_INFO) level = LOG_INFO;
    if (line[0] == OCS_LOG_WARNING) level = LOG_WARNING;
    if (line[0] == OCS_LOG_INFO || line[0] == OCS_LOG_WARNING || line[0] == OCS_LOG_ERROR) {
      text = line[1] == ' ' ? line + 2 : line + 1;
    }
  }
  char message[LINE_CAPACITY + sizeof DAEMON_LOG_PREFIX];
  snprintf(message, sizeof message, "%s%s", DAEMON_LOG_PREFIX, text);
  log_text(level, message);
}

/* The log thread: forwards the daemons' stderr until told to stop, then what is left in the pipe. */
static void* forward_stderr(void* unused) {
  (void)unused;
  line_buffer buffer = {.length = 0};
  for (;;) {
    struct pollfd fds[2] = {{g_stderr_pipe[0], POLLIN, 0}, {g_log_stop_pipe[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue; /* EINTR */
    if (fds[0].revents != 0 && read_lines(g_stderr_pipe[0], &buffer, forward_log_line, NULL) == 0) break;
    if (fds[1].revents != 0) {
      read_lines(g_stderr_pipe[0], &buffer, forward_log_line, NULL);
      if (buffer.length > 0) emit_line(&buffer, forward_log_line, NULL);
      break;
    }
  }
  return NULL;
}

/* Ends the log thread once no daemon is left: what the daemons wrote is logged first. */
static void stop_log_forwarding(void) {
  close_fd(&g_stderr_pipe[1]);   /* end-of-file once drained... */
  close_fd(&g_log_stop_pipe[1]); /* ...or now, if a descendant of a daemon still holds the pipe */
  if (g_log_thread_started) pthread_join(g_log_thread, NULL);
  g_log_thread_started = 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The daemon process                                                                             */

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by design */
#else
  (void)pid;
  return -1;
#endif
}

/*
 * Orthanc's environment plus each OCS_DAEMON_ENVIRONMENT variable it does not set, in a malloc()ed array
 * (the strings are not copied: free only the array). NULL when out of memory.
 */
static char** daemon_environment(void) {
  static const char* const extra[] = OCS_DAEMON_ENVIRONMENT;
  const size_t extra_count = sizeof extra / sizeof extra[0];
  size_t count = 0;
  while (environ[count] != NULL) count++;
  char** env = calloc(count + extra_count + 1, sizeof *env);
  if (env == NULL) return NULL;
  memcpy(env, environ, count * sizeof *env);
  size_t used = count;
  for (size_t i = 0; i < extra_count; i++) {
    size_t name_length = (size_t)(strchr(extra[i], '=') - extra[i]) + 1; /* with the '=' */
    int set = 0;
    for (size_t j = 0; j < count && !set; j++) set = strncmp(environ[j], extra[i], name_length) == 0;
    if (!set) env[used++] = (char*)extra[i];
  }
  return env;
}

/*
 * Starts `node daemonScript` with pipes on its stdin and stdout, the shared stderr pipe, no other
 * descriptor of Orthanc, default signal handling, and its own process group (a Ctrl-C in Orthanc's
 * terminal must not stop it before Orthanc: it exits when its stdin closes). Returns 0, or -1 and why.
 */
static int spawn_daemon(daemon_process* d, char* why, size_t why_size) {
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  if (make_pipe(in) != 0 || make_pipe(out) != 0) {
    snprintf(why, why_size, "cannot create pipes for the daemon: %s", error_text(errno));
    close_fd(&in[0]);
    close_fd(&in[1]);
    return -1;
  }
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  sigset_t no_signals, all_signals;
  sigemptyset(&no_signals);
  sigfillset(&all_signals);
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attributes);
  int rc = posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, g_stderr_pipe[1], 2);
  if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&attributes, &no_signals);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&attributes, &all_signals);
  if (rc == 0) rc = posix_spawnattr_setpgroup(&attributes, 0);
  if (rc == 0) {
    rc = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  }
  char* argv[] = {g_settings.node, g_settings.daemon_script, OCS_BRIDGE_VERSION_FLAG OCS_VERSION, NULL};
  char** env = daemon_environment();
  if (rc == 0 && env == NULL) rc = ENOMEM;
  if (rc == 0) rc = posix_spawnp(&d->pid, g_settings.node, &actions, &attributes, argv, env);
  free(env);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close_fd(&in[0]);
  close_fd(&out[1]);
  if (rc != 0) {
    snprintf(why, why_size,
             "cannot start %s: %s (set " SECTION ".Node to the Node.js program: a name looked up in PATH, "
             "or an absolute path)",
             g_settings.node, error_text(rc));
    d->pid = -1;
    close_fd(&in[1]);
    close_fd(&out[0]);
    return -1;
  }
  d->stdin_fd = in[1];
  d->stdout_fd = out[0];
  set_nonblocking(d->stdin_fd);
  set_nonblocking(d->stdout_fd);
  d->pidfd = open_pidfd(d->pid);
  d->stdout_line.length = 0;
  d->reaped = 0;
  d->status = -1;
  return 0;
}

/* Collects the daemon's exit status if it ended (waiting for it if `block`); returns 1 once reaped. */
static int reap(daemon_process* d, int block) {
  if (d->pid < 0 || d->reaped) return 1;
  pid_t result;
  do result = waitpid(d->pid, &d->status, block ? 0 : WNOHANG);
  while (result < 0 && errno == EINTR);
  if (result == d->pid || (result < 0 && errno == ECHILD)) {
    if (result < 0) d->status = -1; /* reaped by someone else: status unknown */
    d->reaped = 1;
    close_fd(&d->pidfd);
  }
  return d->reaped;
}

/* Waits for up to `ms` for the daemon to end; returns 1 once it is reaped. */
static int wait_for_exit(daemon_process* d, int64_t ms) {
  int64_t deadline = now_ms() + ms;
  while (!reap(d, 0)) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return 0;
    struct pollfd exited = {d->pidfd, POLLIN, 0};
    if (d->pidfd >= 0) poll(&exited, 1, (int)left);
    else sleep_ms(left < 50 ? left : 50);
  }
  return 1;
}

/* "status 1", "signal SIGKILL". */
static void describe_exit(int status, char* text, size_t size) {
  const char* signal_name = status != -1 && WIFSIGNALED(status) ? sigabbrev_np(WTERMSIG(status)) : NULL;
  if (status == -1) snprintf(text, size, "an unknown status");
  else if (WIFEXITED(status)) snprintf(text, size, "status %d", WEXITSTATUS(status));
  else if (signal_name != NULL) snprintf(text, size, "signal SIG%s", signal_name);
  else if (WIFSIGNALED(status)) snprintf(text, size, "signal %d", WTERMSIG(status));
  else snprintf(text, size, "wait status 0x%x", (unsigned)status);
}

/* Closes the parent's ends of a daemon that ended, and forgets it. */
static void release_process(daemon_process* d) {
  close_fd(&d->stdin_fd);
  close_fd(&d->stdout_fd);
  close_fd(&d->pidfd);
  d->pid = -1;
}

/*
 * Stops a daemon: closes its stdin (the daemon exits on end-of-file), waits `grace_s`, sends
 * SIGTERM, waits TERM_GRACE_S more, then sends SIGKILL. Does nothing when there is no daemon.
 */
static void stop_daemon(daemon_process* d, int grace_s) {
  if (d->pid < 0) return;
  close_fd(&d->stdin_fd);
  if (!wait_for_exit(d, (int64_t)grace_s * 1000)) {
    if (grace_s >= STOP_GRACE_S) {
      log_message(LOG_WARNING, "the daemon (pid %d) did not exit within %d s of its stdin closing: sending SIGTERM",
                  (int)d->pid, grace_s);
    }
    kill(d->pid, SIGTERM);
    if (!wait_for_exit(d, TERM_GRACE_S * 1000)) {
      log_message(LOG_WARNING, "the daemon (pid %d) did not exit within %d s of SIGTERM: sending SIGKILL",
                  (int)d->pid, TERM_GRACE_S);
      kill(d->pid, SIGKILL);
      reap(d, 1);
    }
  }
  release_process(d);
}

/* ---------------------------------------------------------------------------------------------- */
/* The start-up handshake                                                                         */

__attribute__((format(printf, 2, 3))) static void handshake_fails(handshake* h, const char* format, ...) {
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(h->reason, sizeof h->reason, format, arguments);
  va_end(arguments);
  h->outcome = OUTCOME_FAILED;
}

/* Whether `line` is `word` alone or followed by a space. */
static int starts_with_word(const char* line, const char* word) {
  size_t length = strlen(word);
  return strncmp(line, word, length) == 0 && (line[length] == ' ' || line[length] == '\0');
}

/* "OCS READY range=<0|1> socket=<path>": other fields before socket= are ignored (later versions). */
static void parse_ready(const char* line, handshake* h) {
  int range = -1;
  const char* path = NULL;
  for (const char* field = line + strlen(OCS_HANDSHAKE_READY); *field != '\0';) {
    if (strncmp(field, OCS_READY_SOCKET_KEY, strlen(OCS_READY_SOCKET_KEY)) == 0) {
      path = field + strlen(OCS_READY_SOCKET_KEY); /* the rest of the line */
      break;
    }
    const char* value = field + strlen(OCS_READY_RANGE_KEY);
    if (strncmp(field, OCS_READY_RANGE_KEY, strlen(OCS_READY_RANGE_KEY)) == 0 && (*value == '0' || *value == '1') &&
        (value[1] == ' ' || value[1] == '\0')) {
      range = *value - '0';
    }
    const char* space = strchr(field, ' ');
    if (space == NULL) break;
    field = space + 1;
  }
  if (range < 0 || path == NULL || *path == '\0') {
    handshake_fails(h, "malformed handshake from the daemon: %s", line);
  } else if (strlen(path) >= SOCKET_PATH_CAPACITY) {
    handshake_fails(h, "the daemon's socket path is longer than %zu bytes: %s", SOCKET_PATH_CAPACITY - 1, path);
  } else {
    h->outcome = OUTCOME_READY;
    h->range = range;
    strcpy(h->socket_path, path);
  }
}

/* Reads one handshake line ("OCS ..."). */
static void parse_handshake(const char* line, handshake* h) {
  h->seen = 1;
  size_t disabled = strlen(OCS_HANDSHAKE_DISABLED), failed = strlen(OCS_HANDSHAKE_FAILED);
  if (strncmp(line, OCS_HANDSHAKE_READY, strlen(OCS_HANDSHAKE_READY)) == 0) {
    parse_ready(line, h);
  } else if (starts_with_word(line, OCS_HANDSHAKE_DISABLED)) {
    h->outcome = OUTCOME_DISABLED;
    snprintf(h->reason, sizeof h->reason, "%s", line[disabled] == ' ' ? line + disabled + 1 : "");
  } else if (starts_with_word(line, OCS_HANDSHAKE_FAILED)) {
    const char* reason = line[failed] == ' ' ? line + failed + 1 : "";
    handshake_fails(h, "%s", *reason != '\0' ? reason : "the daemon failed without saying why");
  } else {
    handshake_fails(h, "unexpected handshake from the daemon: %s", line);
  }
}

/* A line on the daemon's stdout: the first "OCS ..." one is the handshake; others are logged. */
static void on_stdout_line(const char* line, void* context) {
  handshake* h = context;
  if (h != NULL && !h->seen && strncmp(line, OCS_HANDSHAKE_PREFIX, strlen(OCS_HANDSHAKE_PREFIX)) == 0) {
    parse_handshake(line, h);
  } else if (line[0] != '\0') {
    char message[LINE_CAPACITY + sizeof DAEMON_LOG_PREFIX];
    snprintf(message, sizeof message, "%s%s", DAEMON_LOG_PREFIX, line);
    log_text(LOG_INFO, message);
  }
}

/*
 * Writes the configuration and its NUL byte to the daemon's stdin, as far as the pipe takes it now,
 * from `*offset`; stops for good (offset at the end) when the daemon closed its stdin.
 */
static void feed_configuration(daemon_process* d, size_t* offset) {
  while (*offset < g_configuration_size) {
    ssize_t written = write_without_sigpipe(d->stdin_fd, g_configuration + *offset, g_configuration_size - *offset);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (written < 0) *offset = g_configuration_size; /* EPIPE: the daemon is exiting, its status tells why */
    else *offset += (size_t)written;
  }
}

/*
 * Gives the daemon its configuration and waits for its handshake line, for StartupTimeout seconds at
 * most. Fills `h`: READY, DISABLED, or FAILED with the reason (the daemon's, or why it never answered).
 */
static void await_handshake(daemon_process* d, handshake* h) {
  size_t offset = 0;
  int stdout_open = 1;
  int64_t deadline = now_ms() + (int64_t)g_settings.startup_timeout_s * 1000;
  for (;;) {
    int exited = reap(d, 0); /* first: what it wrote before exiting is then all in the pipe */
    if (stdout_open) stdout_open = read_lines(d->stdout_fd, &d->stdout_line, on_stdout_line, h);
    if (h->seen) return;
    if (exited) {
      char status[64];
      describe_exit(d->status, status, sizeof status);
      handshake_fails(h, "the daemon exited with %s before it was ready", status);
      return;
    }
    if (is_stopping()) {
      handshake_fails(h, "Orthanc is stopping");
      return;
    }
    feed_configuration(d, &offset);
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      handshake_fails(h, "the daemon did not answer within %d s (" SECTION ".StartupTimeout)%s",
                      g_settings.startup_timeout_s, stdout_open ? "" : ": it closed its standard output");
      return;
    }
    struct pollfd fds[4] = {{stdout_open ? d->stdout_fd : -1, POLLIN, 0},
                            {g_stop_pipe[0], POLLIN, 0},
                            {d->pidfd, POLLIN, 0},
                            {offset < g_configuration_size ? d->stdin_fd : -1, POLLOUT, 0}};
    poll(fds, 4, (int)(d->pidfd >= 0 || left < 50 ? left : 50));
  }
}

/* Spawns a daemon and waits for its handshake. Unless it is READY, no process is left behind. */
static void start_daemon(daemon_process* d, handshake* h) {
  memset(h, 0, sizeof *h);
  if (access(g_settings.daemon_script, R_OK) != 0) {
    handshake_fails(h,
                    "cannot read the daemon script %s: %s (set " SECTION ".Daemon to the path of "
                    "dist/src/daemon/main.js, built by \"npm run build\")",
                    g_settings.daemon_script, error_text(errno));
    return;
  }
  if (spawn_daemon(d, h->reason, sizeof h->reason) != 0) return;
  log_message(LOG_INFO, "started the daemon: pid %d, %s %s", (int)d->pid, g_settings.node, g_settings.daemon_script);
  await_handshake(d, h);
  if (h->outcome != OUTCOME_READY) stop_daemon(d, h->outcome == OUTCOME_DISABLED ? STOP_GRACE_S : FAILED_GRACE_S);
}

/* Sends the requests of every thread to a new daemon from now on. */
static void publish_endpoint(const handshake* h) {
  pthread_rwlock_wrlock(&g_endpoint_lock);
  strcpy(g_socket_path, h->socket_path);
  g_generation++;
  pthread_rwlock_unlock(&g_endpoint_lock);
}

/* ---------------------------------------------------------------------------------------------- */
/* The supervisor                                                                                 */

/* Waits for the daemon to end, logging what it writes on stdout. Returns 1 once it ended, 0 when
 * Orthanc is stopping. */
static int watch_daemon(daemon_process* d) {
  int stdout_open = d->stdout_fd >= 0;
  for (;;) {
    if (is_stopping()) return 0;
    int exited = reap(d, 0);
    if (stdout_open) stdout_open = read_lines(d->stdout_fd, &d->stdout_line, on_stdout_line, NULL);
    if (exited) return 1;
    struct pollfd fds[3] = {
        {stdout_open ? d->stdout_fd : -1, POLLIN, 0}, {g_stop_pipe[0], POLLIN, 0}, {d->pidfd, POLLIN, 0}};
    poll(fds, 3, d->pidfd >= 0 ? -1 : 250);
  }
}

/* Starts daemons, 1 s apart then twice as long each time (30 s at most), until one is READY.
 * Returns 1 then, 0 when Orthanc is stopping first. */
static int restart_daemon(daemon_process* d) {
  for (int delay = RESTART_FIRST_DELAY_S;;) {
    if (!pause_unless_stopping((int64_t)delay * 1000)) return 0;
    handshake h;
    start_daemon(d, &h);
    if (h.outcome == OUTCOME_READY) {
      publish_endpoint(&h);
      log_message(LOG_WARNING, "the daemon was restarted: pid %d, socket %s", (int)d->pid, h.socket_path);
      if (h.range != g_range_supported) {
        log_message(LOG_ERROR, "the restarted daemon says range=%d, but range reads were registered as %s",
                    h.range, g_range_supported ? "supported" : "unsupported");
      }
      return 1;
    }
    if (is_stopping()) return 0;
    int next = delay * 2 > RESTART_MAX_DELAY_S ? RESTART_MAX_DELAY_S : delay * 2;
    log_message(LOG_ERROR, "cannot restart the daemon: %s%s; next attempt in %d s",
                h.outcome == OUTCOME_DISABLED ? "it answered DISABLED: " : "", h.reason, next);
    delay = next;
  }
}

/* The supervisor thread: restarts the daemon whenever it ends, stops it when Orthanc stops. */
static void* supervise(void* unused) {
  (void)unused;
  while (watch_daemon(&g_daemon)) {
    pthread_rwlock_rdlock(&g_endpoint_lock);
    __atomic_store_n(&g_dead_generation, g_generation, __ATOMIC_RELEASE); /* see call_daemon() */
    pthread_rwlock_unlock(&g_endpoint_lock);
    char status[64];
    describe_exit(g_daemon.status, status, sizeof status);
    log_message(LOG_WARNING, "daemon pid %d exited (%s), restarting in %d s", (int)g_daemon.pid, status,
                RESTART_FIRST_DELAY_S);
    release_process(&g_daemon);
    if (!restart_daemon(&g_daemon)) break;
  }
  stop_daemon(&g_daemon, STOP_GRACE_S);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Requests                                                                                       */

/* Waits until the daemon of `generation` is seen to exit, for RETRY_PAUSE_MS at most. */
static void pause_before_retry(unsigned generation) {
  for (int waited = 0; waited < RETRY_PAUSE_MS; waited += 10) {
    if (__atomic_load_n(&g_dead_generation, __ATOMIC_ACQUIRE) == generation || is_stopping()) return;
    sleep_ms(10);
  }
}

typedef enum {
  EXCHANGE_DONE,    /* an answer, success or the daemon's error code */
  EXCHANGE_BROKEN,  /* the connection failed: worth one more try on a new one */
  EXCHANGE_TIMEOUT, /* RequestTimeout expired: not retried */
  EXCHANGE_FAILED,  /* an answer that cannot be used */
} exchange_status;

static void close_connection_at_thread_exit(void* value) { close((int)(intptr_t)value - 1); }

/* Closes this thread's connection. */
static void connection_close(void) {
  if (t_fd < 0) return;
  close_fd(&t_fd);
  if (g_connection_key_created) pthread_setspecific(g_connection_key, NULL);
}

static void set_socket_timeout(int fd, int option, int seconds) {
  struct timeval timeout = {seconds, 0};
  setsockopt(fd, SOL_SOCKET, option, &timeout, sizeof timeout);
}

/* One attempt at connecting; returns the socket, or -1 with errno. */
static int connect_once(const char* path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  memcpy(address.sun_path, path, strlen(path) + 1); /* fits: checked at the handshake */
  set_socket_timeout(fd, SO_SNDTIMEO, g_settings.connect_timeout_s); /* connect() waits while the backlog is full */
  if (connect(fd, (struct sockaddr*)&address, sizeof address) != 0) {
    int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  set_socket_timeout(fd, SO_RCVTIMEO, g_settings.request_timeout_s);
  set_socket_timeout(fd, SO_SNDTIMEO, g_settings.request_timeout_s);
  return fd;
}

/* Copies the current socket path and returns the generation of its daemon. */
static unsigned current_endpoint(char path[SOCKET_PATH_CAPACITY]) {
  pthread_rwlock_rdlock(&g_endpoint_lock);
  memcpy(path, g_socket_path, SOCKET_PATH_CAPACITY);
  unsigned generation = g_generation;
  pthread_rwlock_unlock(&g_endpoint_lock);
  return generation;
}

/*
 * This thread's connection to the current daemon, opened when there is none or the daemon was
 * restarted since. Connecting is retried for ConnectTimeout seconds (a restart takes about 1 s).
 * Returns the socket, or -1 and the cause.
 */
static int connection_get(char* cause, size_t cause_size) {
  char path[SOCKET_PATH_CAPACITY];
  unsigned generation = current_endpoint(path);
  if (t_fd >= 0 && t_generation == generation) return t_fd;
  connection_close();
  int64_t deadline = now_ms() + (int64_t)g_settings.connect_timeout_s * 1000;
  for (;;) {
    int fd = connect_once(path);
    if (fd >= 0) {
      t_fd = fd;
      t_generation = generation;
      pthread_setspecific(g_connection_key, (void*)(intptr_t)(fd + 1));
      return fd;
    }
    int error = errno;
    if (is_stopping() || now_ms() >= deadline) {
      snprintf(cause, cause_size, "daemon unreachable at %s: %s", path, error_text(error));
      return -1;
    }
    sleep_ms(CONNECT_RETRY_MS);
    generation = current_endpoint(path);
  }
}

int send_all(int fd, const void* data, uint64_t size) {
  const char* next = data;
  while (size > 0) {
    size_t chunk = size > (1u << 30) ? (1u << 30) : (size_t)size;
    ssize_t sent = send(fd, next, chunk, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0) return errno;
    next += sent;
    size -= (uint64_t)sent;
  }
  return 0;
}

int recv_all(int fd, void* data, uint64_t size, uint64_t* received) {
  char* next = data;
  *received = 0;
  while (*received < size) {
    uint64_t left = size - *received;
    ssize_t n = recv(fd, next, left > (1u << 30) ? (1u << 30) : (size_t)left, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return IO_EOF;
    next += n;
    *received += (uint64_t)n;
  }
  return 0;
}

/* Describes an I/O failure while `doing` something, and tells whether it is worth a retry. */
static exchange_status io_failure(int error, const char* doing, char* cause, size_t cause_size) {
  if (error == EAGAIN || error == EWOULDBLOCK) {
    snprintf(cause, cause_size, "no answer within %d s (" SECTION ".RequestTimeout) while %s",
             g_settings.request_timeout_s, doing);
    return EXCHANGE_TIMEOUT;
  }
  if (error == IO_EOF) snprintf(cause, cause_size, "the daemon closed the connection while %s", doing);
  else snprintf(cause, cause_size, "connection to the daemon lost while %s: %s", doing, error_text(error));
  return EXCHANGE_BROKEN;
}

/* What a request is about, for messages: "attachment <uuid> (content type <n>)", or the HTTP request. */
static void describe_request(const request* rq, char* text, size_t size) {
  if (rq->op == OCS_OP_REST || rq->op == OCS_OP_JOB_STEP) snprintf(text, size, "%s", rq->http);
  else snprintf(text, size, "attachment %s (content type %d)", rq->uuid, (int)rq->type);
}

/* Reads the message that follows an error answer (the first ERROR_MESSAGE_CAPACITY bytes) and logs
 * it; the connection is closed if the rest cannot be skipped. */
static void read_error_message(int fd, const request* rq, int32_t code, uint64_t size) {
  char message[ERROR_MESSAGE_CAPACITY + 1];
  uint64_t kept = size < ERROR_MESSAGE_CAPACITY ? size : ERROR_MESSAGE_CAPACITY, received;
  int error = recv_all(fd, message, kept, &received);
  message[received] = '\0';
  for (uint64_t skipped = kept; error == 0 && skipped < size; skipped += received) {
    char scratch[4096];
    error = recv_all(fd, scratch, size - skipped < sizeof scratch ? size - skipped : sizeof scratch, &received);
  }
  if (error != 0) connection_close();
  char subject[512];
  describe_request(rq, subject, sizeof subject);
  log_message(LOG_ERROR, "%s %s: error %d: %s%s", rq->verb, subject, (int)code, message, size > kept ? " [...]" : "");
}

/* The body of a READ_WHOLE answer, straight into a buffer of the Orthanc core. */
static exchange_status receive_whole(int fd, const request* rq, uint64_t size, OrthancPluginErrorCode* code,
                                     char* cause, size_t cause_size) {
  if (OrthancPluginCreateMemoryBuffer64(g_context, rq->target, size) != OrthancPluginErrorCode_Success) {
    *code = OrthancPluginErrorCode_NotEnoughMemory;
    snprintf(cause, cause_size, "cannot allocate %llu bytes", (unsigned long long)size);
    return EXCHANGE_FAILED;
  }
  uint64_t received;
  int error = recv_all(fd, rq->target->data, size, &received);
  if (error == 0) return EXCHANGE_DONE;
  OrthancPluginFreeMemoryBuffer64(g_context, rq->target);
  rq->target->data = NULL;
  rq->target->size = 0;
  char doing[128];
  snprintf(doing, sizeof doing, "receiving the data (%llu of %llu bytes)", (unsigned long long)received,
           (unsigned long long)size);
  return io_failure(error, doing, cause, cause_size);
}

/* The body of a READ_RANGE answer, into the buffer Orthanc allocated: exactly its size. */
static exchange_status receive_range(int fd, const request* rq, uint64_t size, OrthancPluginErrorCode* code,
                                     char* cause, size_t cause_size) {
  if (size != rq->target->size) {
    *code = OrthancPluginErrorCode_BadRange;
    snprintf(cause, cause_size, "the daemon answered %llu bytes for a range of %llu bytes", (unsigned long long)size,
             (unsigned long long)rq->target->size);
    return EXCHANGE_FAILED;
  }
  uint64_t received;
  int error = recv_all(fd, rq->target->data, size, &received);
  if (error == 0) return EXCHANGE_DONE;
  char doing[128];
  snprintf(doing, sizeof doing, "receiving the range (%llu of %llu bytes)", (unsigned long long)received,
           (unsigned long long)size);
  return io_failure(error, doing, cause, cause_size);
}

/* The body of a REST or JOB_STEP answer, into a buffer of its own (OCS_MAX_REST_PAYLOAD bytes at most). */
static exchange_status receive_rest(int fd, const request* rq, uint64_t size, OrthancPluginErrorCode* code,
                                    char* cause, size_t cause_size) {
  if (size > OCS_MAX_REST_PAYLOAD) {
    *code = OrthancPluginErrorCode_Plugin;
    snprintf(cause, cause_size, "protocol error: a REST answer of %llu bytes (at most %u)", (unsigned long long)size,
             OCS_MAX_REST_PAYLOAD);
    return EXCHANGE_FAILED;
  }
  rq->answer->data = malloc(size > 0 ? size : 1);
  if (rq->answer->data == NULL) {
    *code = OrthancPluginErrorCode_NotEnoughMemory;
    snprintf(cause, cause_size, "cannot allocate %llu bytes", (unsigned long long)size);
    return EXCHANGE_FAILED;
  }
  uint64_t received;
  int error = recv_all(fd, rq->answer->data, size, &received);
  if (error == 0) {
    rq->answer->size = size;
    return EXCHANGE_DONE;
  }
  free(rq->answer->data);
  rq->answer->data = NULL;
  char doing[128];
  snprintf(doing, sizeof doing, "receiving the REST answer (%llu of %llu bytes)", (unsigned long long)received,
           (unsigned long long)size);
  return io_failure(error, doing, cause, cause_size);
}

/* Callbacks the daemon makes before it answers a REST or JOB_STEP request (protocol.h), each served
 * here, until the 16-byte header in `response` is the answer's own. */
static exchange_status serve_callbacks(int fd, const request* rq, uint8_t* response, char* cause, size_t cause_size) {
  uint64_t received;
  while (ocs_get_u32(response + OCS_RESP_MAGIC) == OCS_CALLBACK_MAGIC) {
    if (rq->op != OCS_OP_REST && rq->op != OCS_OP_JOB_STEP) {
      snprintf(cause, cause_size, "protocol error: a callback in answer to a storage request");
      return EXCHANGE_FAILED;
    }
    int error = serve_callback(fd, response, cause, cause_size);
    if (error == CALLBACK_MALFORMED) return EXCHANGE_FAILED;
    if (error != 0) return io_failure(error, "serving a callback", cause, cause_size);
    error = recv_all(fd, response, OCS_RESPONSE_HEADER_SIZE, &received);
    if (error != 0) return io_failure(error, "waiting for the answer", cause, cause_size);
  }
  return EXCHANGE_DONE;
}

/* One request and its answer on this thread's connection `fd`. */
static exchange_status exchange(int fd, const request* rq, const uint8_t* header, OrthancPluginErrorCode* code,
                                char* cause, size_t cause_size) {
  int with_payload = rq->op == OCS_OP_CREATE || rq->op == OCS_OP_REST || rq->op == OCS_OP_JOB_STEP;
  int error = send_all(fd, header, OCS_REQUEST_HEADER_SIZE);
  if (error == 0 && with_payload) error = send_all(fd, rq->payload, rq->size);
  if (error != 0) return io_failure(error, "sending the request", cause, cause_size);

  uint8_t response[OCS_RESPONSE_HEADER_SIZE];
  uint64_t received, size;
  int32_t answer;
  error = recv_all(fd, response, sizeof response, &received);
  if (error != 0) return io_failure(error, "waiting for the answer", cause, cause_size);
  *code = OrthancPluginErrorCode_StorageAreaPlugin;
  exchange_status served = serve_callbacks(fd, rq, response, cause, cause_size);
  if (served != EXCHANGE_DONE) return served;
  if (ocs_decode_response(response, &answer, &size) != 0) {
    snprintf(cause, cause_size, "protocol error: bad magic in the daemon's answer");
    return EXCHANGE_FAILED;
  }
  if (answer != OrthancPluginErrorCode_Success) {
    *code = (OrthancPluginErrorCode)answer; /* as is: 13 is a 404 for Orthanc, 41 a bad range... */
    if (size > 0) read_error_message(fd, rq, answer, size);
    return EXCHANGE_DONE;
  }
  *code = OrthancPluginErrorCode_Success;
  if (rq->op == OCS_OP_READ_WHOLE) return receive_whole(fd, rq, size, code, cause, cause_size);
  if (rq->op == OCS_OP_READ_RANGE) return receive_range(fd, rq, size, code, cause, cause_size);
  if (rq->op == OCS_OP_REST || rq->op == OCS_OP_JOB_STEP) return receive_rest(fd, rq, size, code, cause, cause_size);
  if (size == 0) return EXCHANGE_DONE;
  *code = OrthancPluginErrorCode_StorageAreaPlugin;
  snprintf(cause, cause_size, "protocol error: %llu unexpected bytes after a success", (unsigned long long)size);
  return EXCHANGE_FAILED;
}

/*
 * Sends a request to the daemon and returns its answer; `*answered` (when not NULL) tells whether the
 * daemon answered, even with an error. A broken connection is retried once on a new one (each storage
 * operation is idempotent for one uuid), unless rq->no_retry; a timeout is not. Failures are logged.
 *
 * Before the retry, pause_before_retry() waits for the supervisor to see the daemon exit, for
 * RETRY_PAUSE_MS at most: a daemon being killed may still accept a connection for a moment, then
 * reset it; once it has exited, connecting fails instead and connection_get() waits for the restarted
 * daemon. When the daemon did not die (it closed one connection), the pause costs RETRY_PAUSE_MS.
 */
OrthancPluginErrorCode call_daemon(const request* rq, int* answered) {
  uint8_t header[OCS_REQUEST_HEADER_SIZE];
  char cause[512 + SOCKET_PATH_CAPACITY];
  OrthancPluginErrorCode code = OrthancPluginErrorCode_StorageAreaPlugin;
  int attempt = 1;
  if (answered != NULL) *answered = 0;
  if (ocs_encode_request(header, rq->op, (uint32_t)rq->type, rq->size, rq->start, rq->uuid) != 0) {
    snprintf(cause, sizeof cause, "the uuid is longer than %d bytes", OCS_UUID_FIELD_SIZE);
  } else {
    for (;; attempt++) {
      int fd = connection_get(cause, sizeof cause);
      if (fd < 0) break;
      exchange_status status = exchange(fd, rq, header, &code, cause, sizeof cause);
      if (answered != NULL) *answered = status == EXCHANGE_DONE || status == EXCHANGE_FAILED;
      if (status == EXCHANGE_DONE) return code;
      connection_close();
      if (status != EXCHANGE_FAILED) code = OrthancPluginErrorCode_StorageAreaPlugin;
      if (status != EXCHANGE_BROKEN || attempt == 2 || rq->no_retry) break;
      pause_before_retry(t_generation);
    }
  }
  char subject[512];
  describe_request(rq, subject, sizeof subject);
  log_message(LOG_ERROR, "cannot %s %s: %s%s", rq->verb, subject, cause,
              attempt == 2 ? " (after a retry on a new connection)" : "");
  return code;
}

/* ---------------------------------------------------------------------------------------------- */
/* Storage callbacks (any Orthanc thread, concurrently)                                           */

static OrthancPluginErrorCode storage_create(const char* uuid, const void* content, int64_t size,
                                             OrthancPluginContentType type) {
  request rq = {.op = OCS_OP_CREATE, .verb = "create", .uuid = uuid, .type = type, .payload = content,
                .size = size > 0 ? (uint64_t)size : 0};
  return call_daemon(&rq, NULL);
}

static OrthancPluginErrorCode storage_read_whole(OrthancPluginMemoryBuffer64* target, const char* uuid,
                                                 OrthancPluginContentType type) {
  request rq = {.op = OCS_OP_READ_WHOLE, .verb = "read", .uuid = uuid, .type = type, .target = target};
  return call_daemon(&rq, NULL);
}

static OrthancPluginErrorCode storage_read_range(OrthancPluginMemoryBuffer64* target, const char* uuid,
                                                 OrthancPluginContentType type, uint64_t start) {
  request rq = {.op = OCS_OP_READ_RANGE, .verb = "read a range of", .uuid = uuid, .type = type,
                .size = target->size, .start = start, .target = target};
  return call_daemon(&rq, NULL);
}

static OrthancPluginErrorCode storage_remove(const char* uuid, OrthancPluginContentType type) {
  request rq = {.op = OCS_OP_REMOVE, .verb = "remove", .uuid = uuid, .type = type};
  return call_daemon(&rq, NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* REST routes (any Orthanc HTTP thread, concurrently: registered without Orthanc's lock)          */

static const char* const REST_ROUTES[] = OCS_REST_ROUTES;

static const char* const METHOD_NAMES[] = {"?", "GET", "POST", "PUT", "DELETE"};

/* The client's credentials stay in Orthanc, which has already checked them. */
static int forwards_header(const char* name) { return strcmp(name, "authorization") != 0 && strcmp(name, "cookie") != 0; }

/*
 * Encodes an HTTP request as a REST payload (protocol.h) into a malloc()ed buffer of `*size` bytes.
 * Returns NULL when it would exceed OCS_MAX_REST_PAYLOAD (`*size` then says how large) or memory is short.
 */
static uint8_t* encode_rest_request(const char* url, const OrthancPluginHttpRequest* http, uint64_t* size) {
  uint64_t total = OCS_REST_REQUEST_FIXED_SIZE + ocs_string_size(url) + http->bodySize;
  uint32_t headers = 0;
  for (uint32_t i = 0; i < http->groupsCount; i++) total += ocs_string_size(http->groups[i]);
  for (uint32_t i = 0; i < http->getCount; i++) {
    total += ocs_string_size(http->getKeys[i]) + ocs_string_size(http->getValues[i]);
  }
  for (uint32_t i = 0; i < http->headersCount; i++) {
    if (!forwards_header(http->headersKeys[i])) continue;
    total += ocs_string_size(http->headersKeys[i]) + ocs_string_size(http->headersValues[i]);
    headers++;
  }
  *size = total;
  uint8_t* payload = total <= OCS_MAX_REST_PAYLOAD ? calloc(1, total) : NULL;
  if (payload == NULL) return NULL;
  ocs_put_u32(payload + OCS_REST_METHOD, (uint32_t)http->method);
  ocs_put_u32(payload + OCS_REST_GROUP_COUNT, http->groupsCount);
  ocs_put_u32(payload + OCS_REST_ARGUMENT_COUNT, http->getCount);
  ocs_put_u32(payload + OCS_REST_HEADER_COUNT, headers);
  ocs_put_u32(payload + OCS_REST_BODY_SIZE, http->bodySize);
  uint8_t* next = ocs_put_string(payload + OCS_REST_REQUEST_FIXED_SIZE, url);
  for (uint32_t i = 0; i < http->groupsCount; i++) next = ocs_put_string(next, http->groups[i]);
  for (uint32_t i = 0; i < http->getCount; i++) {
    next = ocs_put_string(next, http->getKeys[i]);
    next = ocs_put_string(next, http->getValues[i]);
  }
  for (uint32_t i = 0; i < http->headersCount; i++) {
    if (!forwards_header(http->headersKeys[i])) continue;
    next = ocs_put_string(next, http->headersKeys[i]);
    next = ocs_put_string(next, http->headersValues[i]);
  }
  if (http->bodySize > 0) memcpy(next, http->body, http->bodySize);
  return payload;
}

/* An error status with a plain-text body. */
static void send_text_status(OrthancPluginRestOutput* output, uint16_t status, const char* text) {
  OrthancPluginSetHttpHeader(g_context, output, "Content-Type", "text/plain; charset=utf-8");
  OrthancPluginSendHttpStatus(g_context, output, status, text, (uint32_t)strlen(text));
}

/* Hands the daemon's answer to Orthanc: 200 as a buffer, 405 with its allowed methods, else a status. */
static OrthancPluginErrorCode send_rest_answer(OrthancPluginRestOutput* output, const request* rq) {
  ocs_rest_answer answer;
  char type[REST_TEXT_CAPACITY + 1], allow[REST_TEXT_CAPACITY + 1];
  if (ocs_decode_rest_answer(rq->answer->data, rq->answer->size, &answer) != 0 ||
      answer.type_length > REST_TEXT_CAPACITY || answer.allow_length > REST_TEXT_CAPACITY || answer.status < 100 ||
      answer.status > 599) {
    log_message(LOG_ERROR, "cannot forward %s: protocol error: a malformed REST answer of %llu bytes", rq->http,
                (unsigned long long)rq->answer->size);
    return OrthancPluginErrorCode_Plugin;
  }
  snprintf(type, sizeof type, "%.*s", (int)answer.type_length, answer.type);
  snprintf(allow, sizeof allow, "%.*s", (int)answer.allow_length, answer.allow);
  if (answer.status == 200) {
    OrthancPluginAnswerBuffer(g_context, output, answer.body, (uint32_t)answer.body_size, type);
  } else if (answer.status == 405) {
    OrthancPluginSendMethodNotAllowed(g_context, output, allow);
  } else {
    if (type[0] != '\0') OrthancPluginSetHttpHeader(g_context, output, "Content-Type", type);
    OrthancPluginSendHttpStatus(g_context, output, (uint16_t)answer.status, (const char*)answer.body,
                                (uint32_t)answer.body_size);
  }
  return OrthancPluginErrorCode_Success;
}

/* The callback of every route in REST_ROUTES: forwards the request to the daemon and its answer back. */
static OrthancPluginErrorCode rest_forward(OrthancPluginRestOutput* output, const char* url,
                                           const OrthancPluginHttpRequest* http) {
  char line[512];
  unsigned method = (unsigned)http->method;
  snprintf(line, sizeof line, "%s %s", METHOD_NAMES[method < 5 ? method : 0], url);
  uint64_t size = 0;
  uint8_t* payload = encode_rest_request(url, http, &size);
  if (payload == NULL && size > OCS_MAX_REST_PAYLOAD) {
    send_text_status(output, 413, PLUGIN_NAME ": the request is too large\n");
    return OrthancPluginErrorCode_Success;
  }
  if (payload == NULL) return OrthancPluginErrorCode_NotEnoughMemory;
  rest_answer answer = {NULL, 0};
  request rq = {.op = OCS_OP_REST, .verb = "forward", .uuid = "", .payload = payload, .size = size, .http = line,
                .answer = &answer, .no_retry = http->method != OrthancPluginHttpMethod_Get};
  int answered;
  OrthancPluginErrorCode code = call_daemon(&rq, &answered);
  free(payload);
  if (code == OrthancPluginErrorCode_Success) code = send_rest_answer(output, &rq);
  else if (!answered) {
    /* A load balancer's probe must fail: 503, with the cause in Orthanc's log (call_daemon logged it). */
    send_text_status(output, 503, PLUGIN_NAME ": the daemon is unreachable; Orthanc's log says why\n");
    code = OrthancPluginErrorCode_Success;
  }
  free(answer.data);
  return code;
}

/* ---------------------------------------------------------------------------------------------- */
/* Configuration: the "OrthancCloudStorage" section                                               */

static const char* const KNOWN_OPTIONS[] = {"Node", "Daemon", "StartupTimeout", "RequestTimeout", "ConnectTimeout"};

/* A value for messages: its JSON text when short and scalar, else its type. */
static void describe_value(const json_value* value, char* text, size_t size) {
  size_t length = (size_t)(value->end - value->start);
  if (value->type == JSON_ARRAY || value->type == JSON_OBJECT || length > 64) {
    snprintf(text, size, "%s", json_type_name(value->type));
  } else {
    snprintf(text, size, "%.*s", (int)length, value->start);
  }
}

/* Warns about options of the section that the bridge does not know. */
static void warn_unknown_options(const json_value* section) {
  json_iterator iterator;
  json_value value;
  char* name;
  json_object_begin(section, &iterator);
  while (json_object_next(&iterator, &name, &value)) {
    int known = 0;
    for (size_t i = 0; name != NULL && i < sizeof KNOWN_OPTIONS / sizeof KNOWN_OPTIONS[0]; i++) {
      known |= strcmp(name, KNOWN_OPTIONS[i]) == 0;
    }
    if (!known) {
      log_message(LOG_WARNING, SECTION ".%s: unknown option, ignored (the options are Node, Daemon, StartupTimeout, "
                  "RequestTimeout and ConnectTimeout)", name != NULL ? name : "<name with a NUL character>");
    }
    free(name);
  }
}

/* Reads a string option into `*out` (left as is when absent). Returns 0, or -1 after logging why. */
static int read_string_option(const json_value* section, const char* name, char** out) {
  json_value value;
  if (!json_object_get(section, name, &value)) return 0;
  size_t length = 0;
  char* text = value.type == JSON_STRING ? json_string_decode(&value, &length) : NULL;
  if (text != NULL && length > 0 && strlen(text) == length) {
    free(*out);
    *out = text;
    return 0;
  }
  char got[80];
  describe_value(&value, got, sizeof got);
  log_message(LOG_ERROR, SECTION ".%s: expected a non-empty string without NUL characters, got %s", name, got);
  free(text);
  return -1;
}

/* Reads a number of seconds into `*out` (left as is when absent). Returns 0, or -1 after logging why. */
static int read_seconds_option(const json_value* section, const char* name, int* out) {
  json_value value;
  long long seconds;
  if (!json_object_get(section, name, &value)) return 0;
  if (value.type == JSON_NUMBER && json_integer(&value, &seconds) == 0 && seconds >= 1 && seconds <= MAX_SECONDS) {
    *out = (int)seconds;
    return 0;
  }
  char got[80];
  describe_value(&value, got, sizeof got);
  log_message(LOG_ERROR, SECTION ".%s: expected a whole number of seconds from 1 to %d, got %s", name, MAX_SECONDS,
              got);
  return -1;
}

/* ../dist/src/daemon/main.js from the folder of this library (symbolic links resolved), or NULL. */
static char* default_daemon_script(void) {
  Dl_info info;
  if (dladdr((void*)default_daemon_script, &info) == 0 || info.dli_fname == NULL) return NULL;
  char* library = realpath(info.dli_fname, NULL);
  if (library == NULL) return NULL;
  char* slash = strrchr(library, '/');
  *slash = '\0'; /* realpath() gives an absolute path: there is a slash */
  char* script = NULL;
  if (asprintf(&script, "%s/%s", library, DEFAULT_DAEMON_SCRIPT) < 0) script = NULL;
  free(library);
  char* resolved = script != NULL ? realpath(script, NULL) : NULL; /* without "..", when it exists */
  if (resolved == NULL) return script;
  free(script);
  return resolved;
}

/* Reads the bridge's settings from Orthanc's merged configuration. Returns 0, or -1 after logging. */
static int load_settings(const char* configuration) {
  g_settings = (settings){strdup("node"), NULL, 60, 1200, 5};
  json_value root, section;
  char error[256];
  if (json_parse(configuration, strlen(configuration), &root, error, sizeof error) != 0) {
    log_message(LOG_ERROR, "cannot read the configuration Orthanc passed: %s", error);
    return -1;
  }
  int failures = 0;
  if (root.type == JSON_OBJECT && json_object_get(&root, SECTION, &section)) {
    if (section.type != JSON_OBJECT) {
      log_message(LOG_ERROR, SECTION ": expected an object, got %s", json_type_name(section.type));
      return -1;
    }
    warn_unknown_options(&section);
    failures += read_string_option(&section, "Node", &g_settings.node) != 0;
    failures += read_string_option(&section, "Daemon", &g_settings.daemon_script) != 0;
    failures += read_seconds_option(&section, "StartupTimeout", &g_settings.startup_timeout_s) != 0;
    failures += read_seconds_option(&section, "RequestTimeout", &g_settings.request_timeout_s) != 0;
    failures += read_seconds_option(&section, "ConnectTimeout", &g_settings.connect_timeout_s) != 0;
  }
  if (failures > 0) return -1;
  if (g_settings.daemon_script == NULL) g_settings.daemon_script = default_daemon_script();
  if (g_settings.daemon_script == NULL) {
    log_message(LOG_ERROR, "cannot find the folder of this plugin's library: set " SECTION ".Daemon");
    return -1;
  }
  if (g_settings.node == NULL) {
    log_message(LOG_ERROR, "out of memory");
    return -1;
  }
  return 0;
}

/* Keeps a copy of Orthanc's merged configuration (for every daemon) and reads the bridge's settings. */
static int load_configuration(void) {
  char* configuration = OrthancPluginGetConfiguration(g_context);
  if (configuration == NULL) {
    log_message(LOG_ERROR, "cannot get Orthanc's configuration");
    return -1;
  }
  g_configuration_size = strlen(configuration) + 1;
  g_configuration = strdup(configuration);
  int rc = g_configuration != NULL ? load_settings(configuration) : -1;
  OrthancPluginFreeString(g_context, configuration);
  return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Plugin life cycle                                                                              */

/* Pipes, the per-thread connection key and the log thread. Returns 0, or -1 after logging. */
static int start_plumbing(void) {
  if (make_pipe(g_stop_pipe) != 0 || make_pipe(g_stderr_pipe) != 0 || make_pipe(g_log_stop_pipe) != 0) {
    log_message(LOG_ERROR, "cannot create pipes: %s", error_text(errno));
    return -1;
  }
  set_nonblocking(g_stderr_pipe[0]);
  int rc = pthread_key_create(&g_connection_key, close_connection_at_thread_exit);
  if (rc == 0) g_connection_key_created = 1;
  if (rc == 0) rc = pthread_create(&g_log_thread, NULL, forward_stderr, NULL);
  if (rc != 0) {
    log_message(LOG_ERROR, "cannot create a thread: %s", error_text(rc));
    return -1;
  }
  g_log_thread_started = 1;
  return 0;
}

/* Frees everything but the daemon (stopped before): safe to call twice. */
static void release_resources(void) {
  stop_log_forwarding();
  int* pipes[] = {g_stop_pipe, g_stderr_pipe, g_log_stop_pipe};
  for (size_t i = 0; i < sizeof pipes / sizeof pipes[0]; i++) {
    close_fd(&pipes[i][0]);
    close_fd(&pipes[i][1]);
  }
  if (g_connection_key_created) {
    connection_close();
    pthread_key_delete(g_connection_key); /* no destructor may run once this library is unloaded */
    g_connection_key_created = 0;
  }
  free(g_settings.node);
  free(g_settings.daemon_script);
  g_settings = (settings){0};
  free(g_configuration);
  g_configuration = NULL;
}

/* READY: registers the storage area and the REST routes, and starts the supervisor. Returns 0, or -1
 * after logging. */
static int serve(const handshake* h) {
  g_range_supported = h->range;
  publish_endpoint(h);
  log_message(LOG_WARNING, "the daemon is ready: pid %d, socket %s, range reads %s", (int)g_daemon.pid,
              h->socket_path, h->range ? "on" : "off");
  int rc = pthread_create(&g_supervisor, NULL, supervise, NULL); /* g_daemon is its own from now on */
  if (rc != 0) {
    log_message(LOG_ERROR, "cannot create a thread: %s", error_text(rc));
    return -1;
  }
  g_supervisor_started = 1;
  OrthancPluginRegisterStorageArea2(g_context, storage_create, storage_read_whole,
                                    h->range ? storage_read_range : NULL, storage_remove);
  for (size_t i = 0; i < sizeof REST_ROUTES / sizeof REST_ROUTES[0]; i++) {
    OrthancPluginRegisterRestCallbackNoLock(g_context, REST_ROUTES[i], rest_forward);
  }
  register_job_unserializer();
  return 0;
}

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext* context) {
  g_context = context;
  __atomic_store_n(&g_stopping, 0, __ATOMIC_RELEASE);
  if (!OrthancPluginCheckVersionAdvanced(context, 1, 9, 0)) {
    log_message(LOG_ERROR, "this plugin needs Orthanc 1.9.0 or newer (OrthancPluginRegisterStorageArea2), not %s",
                context->orthancVersion);
    return -1;
  }
  OrthancPluginSetDescription(context, DESCRIPTION);
  if (load_configuration() != 0 || start_plumbing() != 0) {
    release_resources();
    return -1;
  }
  handshake h;
  start_daemon(&g_daemon, &h);
  if (h.outcome == OUTCOME_READY && serve(&h) == 0) return 0;
  stop_daemon(&g_daemon, FAILED_GRACE_S); /* when serve() failed */
  stop_log_forwarding();                  /* so that the daemon's own messages come first */
  if (h.outcome == OUTCOME_DISABLED) {
    if (strstr(h.reason, "disabled") != NULL) log_message(LOG_WARNING, "%s", h.reason);
    else log_message(LOG_WARNING, "plugin is disabled: %s", h.reason);
  } else if (h.outcome == OUTCOME_FAILED) {
    log_message(LOG_ERROR, "%s", h.reason); /* Orthanc adds "Error while initializing plugin" */
  }
  release_resources();
  return h.outcome == OUTCOME_DISABLED ? 0 : -1;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize(void) {
  announce_stop();
  if (g_supervisor_started) pthread_join(g_supervisor, NULL); /* it stops the daemon */
  g_supervisor_started = 0;
  stop_daemon(&g_daemon, STOP_GRACE_S);
  release_resources();
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetName(void) { return PLUGIN_NAME; }

ORTHANC_PLUGINS_API const char* OrthancPluginGetVersion(void) { return OCS_VERSION; }
