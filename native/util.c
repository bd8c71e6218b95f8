/* What every other file of the bridge uses: Orthanc's context and log, the clock, pipes, and the stop
 * signal (a pipe whose write end is closed when Orthanc stops, which wakes every poll() on it at once). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"

OrthancPluginContext* g_context;
static int g_stopping; /* atomic */
static int g_stop_pipe[2] = {-1, -1};

void log_text(log_level level, const char* text) {
  if (g_context == NULL) return;
  if (level == LOG_INFO) OrthancPluginLogInfo(g_context, text);
  else if (level == LOG_WARNING) OrthancPluginLogWarning(g_context, text);
  else OrthancPluginLogError(g_context, text);
}

/* Logs "orthanc-cloud-storage: <formatted text>". */
void log_message(log_level level, const char* format, ...) {
  char text[8192];
  int prefix = snprintf(text, sizeof text, "%s: ", PLUGIN_NAME);
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(text + prefix, sizeof text - (size_t)prefix, format, arguments);
  va_end(arguments);
  log_text(level, text);
}

const char* error_text(int error) {
  const char* text = strerrordesc_np(error); /* thread-safe, unlike strerror() */
  return text != NULL ? text : "unknown error";
}

int64_t now_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void sleep_ms(int64_t ms) {
  struct timespec left = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

void close_fd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Ends above 2, so that they cannot collide with a child's standard streams. */
int make_pipe(int ends[2]) {
  if (pipe2(ends, O_CLOEXEC) != 0) return -1;
  for (int i = 0; i < 2; i++) {
    int moved = ends[i] > 2 ? ends[i] : fcntl(ends[i], F_DUPFD_CLOEXEC, 3);
    int error = errno;
    if (moved != ends[i]) close(ends[i]);
    ends[i] = moved;
    if (moved < 0) {
      close_fd(&ends[1 - i]);
      errno = error;
      return -1;
    }
  }
  return 0;
}

int stop_init(void) {
  __atomic_store_n(&g_stopping, 0, __ATOMIC_RELEASE);
  return make_pipe(g_stop_pipe);
}

int stop_fd(void) { return g_stop_pipe[0]; }

int is_stopping(void) { return __atomic_load_n(&g_stopping, __ATOMIC_ACQUIRE); }

void announce_stop(void) {
  __atomic_store_n(&g_stopping, 1, __ATOMIC_RELEASE);
  close_fd(&g_stop_pipe[1]);
}

void stop_release(void) {
  close_fd(&g_stop_pipe[0]);
  close_fd(&g_stop_pipe[1]);
}
