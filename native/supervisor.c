/*
 * The daemon process. It is spawned with Orthanc's merged configuration on its stdin, which then stays
 * open as a lifeline (end-of-file tells the daemon Orthanc is gone); its first line on stdout is the
 * handshake (protocol.h), which says where its socket is and the values the connection needs; its stderr
 * lines go to Orthanc's log. After READY, a supervisor thread forwards its output and restarts it when
 * it dies, 1 s later, then twice as long each time (30 s at most).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge.h"

#define LINE_CAPACITY 4096 /* longest line read from the daemon; longer ones are cut */
#define STOP_GRACE_S 5     /* at shut-down, or after DISABLED: time to exit once stdin is closed */
#define FAILED_GRACE_S 1   /* after a failed start */
#define TERM_GRACE_S 2     /* after SIGTERM, before SIGKILL */
#define RESTART_FIRST_DELAY_S 1
#define RESTART_MAX_DELAY_S 30
#define DAEMON_PREFIX PLUGIN_NAME " daemon: "

typedef struct {
  char text[LINE_CAPACITY + 1];
  size_t length;
} line_buffer;

typedef struct {
  int seen; /* a handshake line arrived */
  outcome result;
  int range, request_timeout_s, connect_timeout_s, stop_grace_s;
  char socket[LINE_CAPACITY];
  char reason[LINE_CAPACITY + 512];
} handshake;

/* One daemon process and the parent's ends of its standard streams. */
typedef struct {
  pid_t pid;  /* -1: none */
  int pidfd;  /* readable once the process ended; -1 when the kernel lacks pidfd_open() */
  int in_fd;  /* a socket: the configuration, then the lifeline (send() cannot raise SIGPIPE) */
  int out_fd, err_fd;
  size_t fed; /* bytes of the configuration sent */
  line_buffer out_line, err_line;
  int reaped, status; /* status from waitpid(), -1 if unknown */
} daemon_process;

static daemon_settings* g_settings;
static daemon_process g_daemon = {.pid = -1, .pidfd = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1};
static int g_range;
static int g_stop_grace_s = STOP_GRACE_S; /* the daemon's stop-grace, never below STOP_GRACE_S */
static pthread_t g_thread;
static int g_thread_started;
extern char** environ;

/* A line of the daemon's: the first "OCS ..." one on stdout is the handshake (when `h`); any other goes to
 * Orthanc's log, a stderr line "I text", "W text" or "E text" at that level, others as errors (stdout: info). */
static void on_line(const char* line, handshake* h, int from_stderr) {
  size_t disabled = strlen(OCS_HANDSHAKE_DISABLED), failed = strlen(OCS_HANDSHAKE_FAILED " ");
  int at = 0, known = from_stderr && line[0] != '\0' && strchr("IWE", line[0]) != NULL && line[1] == ' ';
  if (line[0] == '\0') return;
  if (from_stderr || h == NULL || h->seen || strncmp(line, OCS_HANDSHAKE_PREFIX, strlen(OCS_HANDSHAKE_PREFIX)) != 0) {
    log_level level = !from_stderr || line[0] == OCS_LOG_INFO ? LOG_INFO : line[0] == OCS_LOG_WARNING ? LOG_WARNING : LOG_ERROR;
    log_text(known || !from_stderr ? level : LOG_ERROR, DAEMON_PREFIX, line + (known ? 2 : 0));
    return;
  }
  h->seen = 1;
  h->result = OUTCOME_FAILED;
  if (sscanf(line, OCS_READY_SCANF_FORMAT, &h->range, &h->request_timeout_s, &h->connect_timeout_s, &h->stop_grace_s, &at) == 4 && at > 0 &&
      line[at] != '\0' && strlen(line + at) < sizeof ((struct sockaddr_un*)0)->sun_path) {
    h->result = OUTCOME_READY;
    snprintf(h->socket, sizeof h->socket, "%s", line + at);
  } else if (strncmp(line, OCS_HANDSHAKE_DISABLED, disabled) == 0) {
    h->result = OUTCOME_DISABLED;
    snprintf(h->reason, sizeof h->reason, "%s", line + disabled + (line[disabled] == ' '));
  } else if (strncmp(line, OCS_HANDSHAKE_FAILED " ", failed) == 0) {
    snprintf(h->reason, sizeof h->reason, "%s", line + failed);
  } else {
    snprintf(h->reason, sizeof h->reason, "unexpected handshake from the daemon: %s", line);
  }
}

/* Hands every complete line of a non-blocking pipe over (without "\r"); a line longer than LINE_CAPACITY
 * in pieces. At end-of-file, hands the unfinished line over too and closes the pipe. */
static void read_lines(int* fd, line_buffer* b, handshake* h, int from_stderr) {
  char chunk[4096];
  for (ssize_t n; *fd >= 0;) {
    n = read(*fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    for (ssize_t i = 0; i <= n; i++) {
      if (i == n ? n <= 0 && b->length > 0 : chunk[i] == '\n' || b->length == LINE_CAPACITY) {
        b->text[b->length - (b->length > 0 && b->text[b->length - 1] == '\r')] = '\0';
        b->length = 0;
        on_line(b->text, h, from_stderr);
      }
      if (i < n && chunk[i] != '\n') b->text[b->length++] = chunk[i];
    }
    if (n <= 0) close_fd(fd);
  }
}

/* Orthanc's environment plus each OCS_DAEMON_ENVIRONMENT variable it does not set (the strings are not
 * copied: free only the array); NULL when out of memory. */
static char** daemon_environment(void) {
  static const char* const extra[] = OCS_DAEMON_ENVIRONMENT;
  size_t count = 0, used;
  while (environ[count] != NULL) count++;
  char** env = calloc(count + sizeof extra / sizeof extra[0] + 1, sizeof *env);
  if (env == NULL) return NULL;
  memcpy(env, environ, count * sizeof *env);
  used = count;
  for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
    size_t name_length = (size_t)(strchr(extra[i], '=') - extra[i]) + 1; /* with the '=' */
    int set = 0;
    for (size_t j = 0; j < count && !set; j++) set = strncmp(environ[j], extra[i], name_length) == 0;
    if (!set) env[used++] = (char*)extra[i];
  }
  return env;
}

/*
 * Starts `node <script> --bridge-...` with no other descriptor of Orthanc, default signal handling, and its own
 * process group (a Ctrl-C in Orthanc's terminal must not stop it before Orthanc: it exits when its stdin
 * closes). The flags say what the bridge read, which the daemon checks against its own reading of the
 * configuration. Returns 0, or -1 and why.
 */
static int spawn_daemon(daemon_process* d, char* why, size_t why_size) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  char* argv[] = {g_settings->node, g_settings->daemon_script, NULL, NULL, NULL, NULL, NULL};
  int rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || make_pipe(out) != 0 || make_pipe(err) != 0;
  rc = rc ? errno : 0;
  if (asprintf(&argv[2], "%s%s", OCS_FLAG_BRIDGE_VERSION, OCS_VERSION) < 0 ||
      asprintf(&argv[3], "%s%s", OCS_FLAG_NODE, g_settings->node) < 0 ||
      asprintf(&argv[4], "%s%s", OCS_FLAG_DAEMON, g_settings->daemon_script) < 0 ||
      asprintf(&argv[5], "%s%d", OCS_FLAG_STARTUP_TIMEOUT, g_settings->startup_timeout_s) < 0) {
    rc = ENOMEM;
  }
  char** env = rc == 0 ? daemon_environment() : NULL;
  if (rc == 0 && env == NULL) rc = ENOMEM;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  sigset_t no_signals, all_signals;
  sigemptyset(&no_signals), sigfillset(&all_signals);
  posix_spawn_file_actions_init(&actions), posix_spawnattr_init(&attributes);
  int child_ends[] = {in[0], out[1], err[1]};
  for (int i = 0; i < 3 && rc == 0; i++) rc = posix_spawn_file_actions_adddup2(&actions, child_ends[i], i);
  if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&attributes, &no_signals);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&attributes, &all_signals);
  if (rc == 0) rc = posix_spawnattr_setpgroup(&attributes, 0);
  if (rc == 0) rc = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  if (rc == 0) rc = posix_spawnp(&d->pid, g_settings->node, &actions, &attributes, argv, env);
  posix_spawn_file_actions_destroy(&actions), posix_spawnattr_destroy(&attributes);
  free(env), free(argv[2]), free(argv[3]), free(argv[4]), free(argv[5]);
  close_fd(&in[0]), close_fd(&out[1]), close_fd(&err[1]);
  *d = (daemon_process){.pid = rc == 0 ? d->pid : -1, .in_fd = in[1], .out_fd = out[0], .err_fd = err[0],
                        .pidfd = -1, .status = -1};
  if (rc != 0) {
    snprintf(why, why_size, "cannot start %s (%s): %s (set " SECTION ".Node to the Node.js program: a name looked up "
             "in PATH, or an absolute path)", g_settings->node, g_settings->node_origin, error_text(rc));
    close_fd(&d->in_fd), close_fd(&d->out_fd), close_fd(&d->err_fd);
    return -1;
  }
  fcntl(d->out_fd, F_SETFL, fcntl(d->out_fd, F_GETFL) | O_NONBLOCK);
  fcntl(d->err_fd, F_SETFL, fcntl(d->err_fd, F_GETFL) | O_NONBLOCK);
#ifdef SYS_pidfd_open
  d->pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0); /* close-on-exec by design */
#endif
  return 0;
}

/* Collects the daemon's exit status if it ended; returns 1 once reaped. */
static int reap(daemon_process* d) {
  if (d->pid < 0 || d->reaped) return 1;
  pid_t result;
  do result = waitpid(d->pid, &d->status, WNOHANG);
  while (result < 0 && errno == EINTR);
  if (result == d->pid || (result < 0 && errno == ECHILD)) {
    if (result < 0) d->status = -1; /* reaped by someone else: status unknown */
    d->reaped = 1;
    close_fd(&d->pidfd);
  }
  return d->reaped;
}

/*
 * Waits up to `ms` for the daemon to do something, then handles it: the handshake (when `h`) and log lines
 * on stdout, log lines on stderr, the configuration fed to stdin as far as it takes it. Returns 1 once the
 * daemon has ended (everything it wrote before is read by then), else 0.
 */
static int pump(daemon_process* d, handshake* h, int64_t ms, int wake_on_stop) {
  const char* config = g_settings->configuration;
  size_t size = strlen(config) + 1; /* with its NUL byte, which ends it for the daemon */
  struct pollfd fds[5] = {{d->out_fd, POLLIN, 0}, {d->err_fd, POLLIN, 0}, {d->pidfd, POLLIN, 0},
                          {d->fed < size ? d->in_fd : -1, POLLOUT, 0}, {wake_on_stop ? stop_fd() : -1, POLLIN, 0}};
  /* Without a pidfd, the end of the daemon is seen by polling waitpid() every 50 ms. */
  if (!reap(d)) poll(fds, 5, (int)(d->pidfd >= 0 ? ms : ms < 0 || ms > 50 ? 50 : ms));
  int ended = reap(d);
  read_lines(&d->out_fd, &d->out_line, h, 0);
  read_lines(&d->err_fd, &d->err_line, NULL, 1);
  while (d->fed < size && d->in_fd >= 0 && !ended) {
    ssize_t sent = send(d->in_fd, config + d->fed, size - d->fed, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) d->fed = size; /* exiting: its status says why */
    if (sent < 0) break;
    d->fed += (size_t)sent;
  }
  return ended;
}

/* Stops a daemon: closes its stdin, waits `grace_s`, sends SIGTERM, waits TERM_GRACE_S, then SIGKILL. */
static void stop_daemon(daemon_process* d, int grace_s) {
  static const char* const signal_names[] = {"SIGTERM", "SIGKILL"};
  static const int signals[] = {SIGTERM, SIGKILL};
  close_fd(&d->in_fd);
  for (int step = 0, grace = grace_s; d->pid >= 0 && step < 3; step++, grace = TERM_GRACE_S) {
    int64_t deadline = now_ms() + (int64_t)grace * 1000;
    int ended = pump(d, NULL, 0, 0);
    while (!ended && now_ms() < deadline) ended = pump(d, NULL, deadline - now_ms(), 0);
    if (ended || step == 2) break;
    if (step > 0 || grace_s >= STOP_GRACE_S) {
      log_message(LOG_WARNING, "the daemon (pid %d) did not exit within %d s of %s: sending %s", (int)d->pid, grace,
                  step == 0 ? "its stdin closing" : "SIGTERM", signal_names[step]);
    }
    kill(d->pid, signals[step]);
  }
  close_fd(&d->out_fd), close_fd(&d->err_fd), close_fd(&d->pidfd);
  d->pid = -1;
}

/* "status 1", "signal SIGKILL". */
static void describe_exit(int status, char* text, size_t size) {
  const char* name = status != -1 && WIFSIGNALED(status) ? sigabbrev_np(WTERMSIG(status)) : NULL;
  if (status == -1) snprintf(text, size, "an unknown status");
  else if (WIFEXITED(status)) snprintf(text, size, "status %d", WEXITSTATUS(status));
  else if (name != NULL) snprintf(text, size, "signal SIG%s", name);
  else snprintf(text, size, "wait status 0x%x", (unsigned)status);
}

/* Spawns a daemon and waits StartupTimeout seconds at most for its handshake. Unless it is READY, no
 * process is left behind. */
static void start_daemon(daemon_process* d, handshake* h) {
  memset(h, 0, sizeof *h);
  if (access(g_settings->daemon_script, R_OK) != 0) {
    snprintf(h->reason, sizeof h->reason, "cannot read the daemon script %s: %s (set " SECTION ".Daemon to the "
             "path of dist/src/daemon/main.js, built by \"npm run build\")", g_settings->daemon_script,
             error_text(errno));
    return;
  }
  if (spawn_daemon(d, h->reason, sizeof h->reason) != 0) return;
  log_message(LOG_INFO, "started the daemon: pid %d, %s %s (Node.js: %s)", (int)d->pid, g_settings->node,
              g_settings->daemon_script, g_settings->node_origin);
  int64_t deadline = now_ms() + (int64_t)g_settings->startup_timeout_s * 1000;
  int ended = 0;
  while (!h->seen && !ended && !is_stopping() && now_ms() < deadline) ended = pump(d, h, deadline - now_ms(), 1);
  char status[64];
  describe_exit(d->status, status, sizeof status);
  if (!h->seen && ended) snprintf(h->reason, sizeof h->reason, "the daemon exited with %s before it was ready", status);
  else if (!h->seen && is_stopping()) snprintf(h->reason, sizeof h->reason, "Orthanc is stopping");
  else if (!h->seen) snprintf(h->reason, sizeof h->reason, "the daemon did not answer within %d s (" SECTION
                              ".StartupTimeout)%s", g_settings->startup_timeout_s,
                              d->out_fd < 0 ? ": it closed its standard output" : "");
  if (h->result != OUTCOME_READY) stop_daemon(d, h->result == OUTCOME_DISABLED ? STOP_GRACE_S : FAILED_GRACE_S);
  else connection_publish(h->socket, h->request_timeout_s, h->connect_timeout_s);
}

outcome supervisor_start(daemon_settings* settings, int* range, char* reason, size_t reason_size) {
  handshake h;
  g_settings = settings;
  start_daemon(&g_daemon, &h);
  g_range = *range = h.range;
  if (h.result == OUTCOME_READY && h.stop_grace_s > g_stop_grace_s) g_stop_grace_s = h.stop_grace_s;
  snprintf(reason, reason_size, "%s", h.result == OUTCOME_READY ? h.socket : h.reason);
  if (h.result == OUTCOME_READY) {
    log_message(LOG_WARNING, "the daemon is ready: pid %d, socket %s, range reads %s, Node.js %s (%s)",
                (int)g_daemon.pid, h.socket, h.range ? "on" : "off", settings->node, settings->node_origin);
  }
  return h.result;
}

/* Starts daemons until one is READY; returns 1 then, 0 when Orthanc is stopping first. */
static int restart_daemon(daemon_process* d) {
  struct pollfd stop = {stop_fd(), POLLIN, 0};
  for (int delay = RESTART_FIRST_DELAY_S, next;; delay = next) {
    next = delay * 2 > RESTART_MAX_DELAY_S ? RESTART_MAX_DELAY_S : delay * 2;
    for (int64_t end = now_ms() + delay * 1000; !is_stopping() && now_ms() < end;) poll(&stop, 1, (int)(end - now_ms()));
    if (is_stopping()) return 0;
    handshake h;
    start_daemon(d, &h);
    if (h.result == OUTCOME_READY) {
      log_message(LOG_WARNING, "the daemon was restarted: pid %d, socket %s", (int)d->pid, h.socket);
      if (h.range != g_range) {
        log_message(LOG_ERROR, "the restarted daemon says range=%d, but range reads were registered as %s", h.range,
                    g_range ? "supported" : "unsupported");
      }
      return 1;
    }
    if (is_stopping()) return 0;
    log_message(LOG_ERROR, "cannot restart the daemon: %s%s; next attempt in %d s",
                h.result == OUTCOME_DISABLED ? "it answered DISABLED: " : "", h.reason, next);
  }
}

/* The supervisor thread: forwards the daemon's output, restarts it whenever it ends, stops it at the end. */
static void* supervise(void* unused) {
  (void)unused;
  for (;;) {
    while (!is_stopping() && !pump(&g_daemon, NULL, -1, 1)) {
    }
    if (is_stopping()) break;
    connection_daemon_exited(); /* see call_daemon() */
    char status[64];
    describe_exit(g_daemon.status, status, sizeof status);
    log_message(LOG_WARNING, "daemon pid %d exited (%s), restarting in %d s", (int)g_daemon.pid, status,
                RESTART_FIRST_DELAY_S);
    stop_daemon(&g_daemon, 0); /* it has ended: only closes its streams */
    if (!restart_daemon(&g_daemon)) break;
  }
  stop_daemon(&g_daemon, g_stop_grace_s);
  return NULL;
}

int supervisor_watch(void) {
  int rc = pthread_create(&g_thread, NULL, supervise, NULL); /* g_daemon is its own from now on */
  g_thread_started = rc == 0;
  if (rc != 0) log_message(LOG_ERROR, "cannot create a thread: %s", error_text(rc));
  return rc == 0 ? 0 : -1;
}

void supervisor_stop(void) {
  if (g_thread_started) pthread_join(g_thread, NULL); /* it stops the daemon */
  g_thread_started = 0;
  stop_daemon(&g_daemon, STOP_GRACE_S); /* when there was no thread */
}
