/* The supervisor process (src/daemon/supervisor.ts): docs/bridge.md#supervision-and-respawn. */
#include "bridge.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#define LINE_CAPACITY 4096 /* longest line read; longer ones are cut */
#define STOP_GRACE_S 10    /* for the supervisor to stop the daemon and exit */
#define FIRST_LINE_S 30    /* for its first line (STARTING) */
#define MARGIN_S 20        /* beyond StartupTimeout, for the supervisor to stop a daemon that failed */
#define RESPAWN_MAX_S 30   /* the longest pause before a respawn, and the life that needs none */
typedef struct { /* a supervisor's handshake: READY, DISABLED or FAILED, awaited until `deadline` */
  int seen, features, timeout_s; /* timeout_s: StartupTimeout, from the STARTING line */
  int64_t deadline;
  outcome result;
  char reason[LINE_CAPACITY + 1];
} handshake;

static pid_t g_pid = -1;
static int g_lifeline = -1, g_lines = -1; /* its stdin (a socket: no SIGPIPE); its stdout and stderr */
static char g_line[LINE_CAPACITY + 1];
static size_t g_length;
static pthread_t g_thread;
static int g_thread_started, g_stop_grace_s; /* READY's stop-grace: the daemon's own time to exit */
static char *g_node, *g_script, *g_configuration; /* to start another supervisor should it die */
static int64_t g_started;                                   /* when it was started; under g_mutex, like g_pid */
static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER; /* starting or stopping one */
extern char** environ;

/* A log line ("W: text", "W daemon: text"), READY, STARTING, DISABLED or FAILED; `h` while awaiting a handshake. */
static void on_line(const char* line, handshake* h) {
  int range, custom_data, type_status, request_timeout, connect_timeout, at = 0;
  int known = strchr("IWE", line[0]) != NULL && (line[1] == ' ' || line[1] == ':'); /* line[0]: not the NUL */
  if (strncmp(line, OCS_HANDSHAKE_PREFIX, strlen(OCS_HANDSHAKE_PREFIX)) != 0) {
    log_level level = line[0] == OCS_LOG_INFO ? LOG_INFO : line[0] == OCS_LOG_WARNING ? LOG_WARNING : LOG_ERROR;
    log_line(known ? level : LOG_ERROR, known ? PLUGIN_NAME : PLUGIN_NAME " supervisor: ", "%s", line + known);
  } else if (sscanf(line, OCS_READY_SCANF_FORMAT, &range, &custom_data, &type_status, &request_timeout,
                    &connect_timeout, &g_stop_grace_s, &at) == 6 &&
             at > 0 && line[at] != '\0' && strlen(line + at) < sizeof ((struct sockaddr_un*)0)->sun_path) {
    connection_publish(line + at, request_timeout, connect_timeout);
    if (h != NULL) h->seen = 1, h->features = range | custom_data << 1 | type_status << 2, h->result = OUTCOME_READY;
  } else if (h != NULL && sscanf(line, OCS_SUPERVISOR_LINE_STARTING "%d", &h->timeout_s) == 1) {
    h->deadline = now_ms() + (h->timeout_s + MARGIN_S) * 1000LL;
  } else if (h != NULL) {
    const char* reason = strchr(line + strlen(OCS_HANDSHAKE_PREFIX), ' ');
    h->seen = 1;
    h->result = strncmp(line, OCS_HANDSHAKE_DISABLED " ", strlen(OCS_HANDSHAKE_DISABLED " ")) ? OUTCOME_FAILED : OUTCOME_DISABLED;
    snprintf(h->reason, sizeof h->reason, "%s", reason != NULL ? reason + 1 : line);
  } else {
    log_message(LOG_ERROR, "protocol error: an unexpected line from the supervisor: %s", line);
  }
}

/* Hands over the lines the pipe holds (waits): 0, -1 at its end, 1 when h's deadline passed first. */
static int read_lines(handshake* h) {
  char chunk[4096];
  struct pollfd input = {.fd = g_lines, .events = POLLIN};
  int polled = h != NULL && g_lines >= 0 ? poll(&input, 1, h->deadline > now_ms() ? (int)(h->deadline - now_ms()) : 0) : 1;
  if (polled <= 0) return polled == 0 ? 1 : errno == EINTR ? 0 : -1;
  ssize_t n = read(g_lines, chunk, sizeof chunk);
  for (ssize_t i = 0; i < n + (n == 0); i++) { /* at the end (n == 0), once for the unfinished line */
    if (n > 0 && chunk[i] != '\n') {
      if (g_length < LINE_CAPACITY) g_line[g_length++] = chunk[i];
    } else if (n > 0 || g_length > 0) {
      g_line[g_length - (g_length > 0 && g_line[g_length - 1] == '\r')] = '\0';
      if (g_line[0] != '\0') on_line(g_line, h);
      g_length = 0;
    }
  }
  return n > 0 || (n < 0 && errno == EINTR) ? 0 : -1;
}

/* `fd`, moved above 2: not one of the standard streams the child's are set to. */
static int above_2(int fd) {
  int moved = fd >= 0 && fd <= 2 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : fd;
  if (moved != fd) close(fd);
  return moved;
}

/* Starts a supervisor, writes it the configuration; 0 or an errno value (docs/bridge.md#start-up-the-handshake-and-its-deadlines). */
static int spawn_supervisor(void) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, rc = 0;
  char orthanc[128]; /* Orthanc's version: custom data or not */
  snprintf(orthanc, sizeof orthanc, "%s%s", OCS_FLAG_ORTHANC_VERSION, g_context->orthancVersion);
  char* argv[] = {g_node, g_script, OCS_SUPERVISE_FLAG, OCS_FLAG_BRIDGE_VERSION OCS_VERSION, orthanc, NULL};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || pipe2(out, O_CLOEXEC) != 0) rc = errno;
  for (int i = 0; i < 2; i++) in[i] = above_2(in[i]), out[i] = above_2(out[i]);
  if (rc == 0 && (in[0] < 0 || in[1] < 0 || out[0] < 0 || out[1] < 0)) rc = errno;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  sigset_t no_signals, all_signals;
  sigemptyset(&no_signals), sigfillset(&all_signals);
  posix_spawn_file_actions_init(&actions), posix_spawnattr_init(&attributes);
  if (rc == 0) /* these fail only when memory is short */
    rc = posix_spawn_file_actions_adddup2(&actions, in[0], 0) || posix_spawn_file_actions_adddup2(&actions, out[1], 1) ||
         posix_spawn_file_actions_adddup2(&actions, out[1], 2) || posix_spawn_file_actions_addclosefrom_np(&actions, 3) ||
         posix_spawnattr_setsigmask(&attributes, &no_signals) || posix_spawnattr_setsigdefault(&attributes, &all_signals) ||
         posix_spawnattr_setpgroup(&attributes, 0) ||
         posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP) ? ENOMEM : 0;
  if (rc == 0) rc = posix_spawnp(&g_pid, g_node, &actions, &attributes, argv, environ);
  posix_spawn_file_actions_destroy(&actions), posix_spawnattr_destroy(&attributes);
  close_fd(&in[0]), close_fd(&out[1]);
  g_lifeline = in[1], g_lines = out[0], g_started = now_ms(), g_length = 0; /* no line of a previous one */
  if (rc != 0) g_pid = -1, close_fd(&g_lifeline), close_fd(&g_lines);
  else send_all(g_lifeline, g_configuration, strlen(g_configuration) + 1);
  return rc;
}

/* Closes the lifeline, waits for the supervisor to exit, else kills it; returns "status 1", "signal 9"... */
static const char* stop_supervisor(char* ended, size_t size) {
  int status = -1;
  close_fd(&g_lifeline);
  for (int64_t end = now_ms() + (STOP_GRACE_S + g_stop_grace_s) * 1000; g_pid > 0 && waitpid(g_pid, &status, WNOHANG) == 0; sleep_ms(20)) {
    if (now_ms() < end) continue;
    log_message(LOG_WARNING, "the supervisor (pid %d) did not exit within %d s of its stdin closing: sending SIGKILL",
                (int)g_pid, STOP_GRACE_S + g_stop_grace_s);
    kill(g_pid, SIGKILL), waitpid(g_pid, &status, 0);
  }
  g_pid = -1;
  if (status == -1) snprintf(ended, size, "an unknown status");
  else snprintf(ended, size, "%s %d", WIFSIGNALED(status) ? "signal" : "status", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  return ended;
}

/* The watcher: reads the supervisor's lines, and starts another when it ends or its handshake is late. */
static void* watch(void* unused) {
  handshake h = {.seen = 1, .result = OUTCOME_READY}; /* the first supervisor's, which supervisor_start() awaited */
  for (int delay_s = 0, rc; !is_stopping(); h = (handshake){.deadline = now_ms() + FIRST_LINE_S * 1000}) {
    while (read_lines(h.seen ? NULL : &h) == 0) continue;
    char ended[64] = "";
    pthread_mutex_lock(&g_mutex);
    int pid = (int)g_pid, lived_s = (int)((now_ms() - g_started) / 1000);
    delay_s = lived_s >= RESPAWN_MAX_S ? 0 : delay_s == 0 ? 1 : delay_s * 2 > RESPAWN_MAX_S ? RESPAWN_MAX_S : delay_s * 2;
    if (!is_stopping()) stop_supervisor(ended, sizeof ended), close_fd(&g_lines); /* else supervisor_stop()'s */
    const char* why = !h.seen ? "no handshake in time" : h.result == OUTCOME_READY ? "its last lines are above" : h.reason;
    if (!is_stopping()) log_message(LOG_ERROR, "the supervisor (pid %d) ended after %d s with %s (%s): starting another "
                                    "in %d s", pid, lived_s, ended, why, delay_s);
    pthread_mutex_unlock(&g_mutex);
    for (int64_t at = now_ms() + delay_s * 1000; !is_stopping() && now_ms() < at;) sleep_ms(50);
    pthread_mutex_lock(&g_mutex);
    if (!is_stopping() && (rc = spawn_supervisor()) != 0) log_message(LOG_ERROR, "cannot start the supervisor again: %s", error_text(rc));
    else if (!is_stopping()) log_message(LOG_WARNING, "started the supervisor again: pid %d", (int)g_pid);
    pthread_mutex_unlock(&g_mutex);
  }
  return unused;
}

outcome supervisor_start(const char* node, const char* script, const char* configuration, int* features, char* reason, size_t reason_size) {
  handshake h = {.result = OUTCOME_FAILED, .deadline = now_ms() + FIRST_LINE_S * 1000};
  g_node = strdup(node), g_script = strdup(script), g_configuration = strdup(configuration);
  int rc = g_node && g_script && g_configuration ? spawn_supervisor() : ENOMEM, late = 0, pid = (int)g_pid;
  if (rc != 0) snprintf(h.reason, sizeof h.reason, "cannot start %s: %s (install Node.js in PATH, or the runtime the "
                        "package brings beside the plugin)", node, error_text(rc));
  else log_message(LOG_INFO, "started the supervisor: pid %d, %s %s", pid, node, script);
  while (rc == 0 && !h.seen && (late = read_lines(&h)) == 0) continue;
  if (rc == 0 && h.result == OUTCOME_READY && (rc = pthread_create(&g_thread, NULL, watch, NULL)) != 0)
    h.result = OUTCOME_FAILED, snprintf(h.reason, sizeof h.reason, "cannot watch the supervisor: %s", error_text(rc));
  char ended[64];
  if (h.result != OUTCOME_READY && pid > 0) stop_supervisor(ended, sizeof ended), close_fd(&g_lines);
  if (h.result != OUTCOME_READY && pid > 0 && late == 1)
    snprintf(reason, reason_size, "the supervisor (pid %d) gave no handshake within %d s (%s): it was stopped (its output, "
             "if any, is above)", pid, h.timeout_s > 0 ? h.timeout_s + MARGIN_S : FIRST_LINE_S, h.timeout_s > 0
             ? "OrthancCloudStorage.StartupTimeout and a margin" : "not even its first line: is its Node.js hung?");
  else if (h.result != OUTCOME_READY && pid > 0 && !h.seen)
    snprintf(reason, reason_size, "the supervisor exited with %s before the daemon was ready (its output is above)", ended);
  else
    snprintf(reason, reason_size, "%s", h.reason);
  if (!(g_thread_started = h.result == OUTCOME_READY)) free(g_node), free(g_script), free(g_configuration);
  *features = h.features;
  return h.result;
}

void supervisor_stop(void) {
  char ended[64];
  pthread_mutex_lock(&g_mutex), stop_supervisor(ended, sizeof ended), pthread_mutex_unlock(&g_mutex);
  if (g_thread_started) pthread_join(g_thread, NULL), free(g_node), free(g_script), free(g_configuration); /* it ends with it */
  g_thread_started = 0;
  close_fd(&g_lines);
}
