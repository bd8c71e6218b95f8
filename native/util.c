/* What every other file of the bridge uses: Orthanc's context and log, the clock, and the stop flag. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"

OrthancPluginContext* g_context;
static int g_stopping; /* atomic */

/* Logs `prefix`, then the formatted text (cut at 8 KiB). */
void log_line(log_level level, const char* prefix, const char* format, ...) {
  char line[8192];
  int used = snprintf(line, sizeof line, "%s", prefix);
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(line + used, sizeof line - (size_t)used, format, arguments);
  va_end(arguments);
  if (g_context != NULL)
    (level == LOG_INFO ? OrthancPluginLogInfo : level == LOG_WARNING ? OrthancPluginLogWarning : OrthancPluginLogError)(g_context, line);
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
  while (nanosleep(&left, &left) != 0 && errno == EINTR) continue;
}

void close_fd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

int is_stopping(void) { return __atomic_load_n(&g_stopping, __ATOMIC_ACQUIRE); }
void set_stopping(int stopping) { __atomic_store_n(&g_stopping, stopping, __ATOMIC_RELEASE); }
