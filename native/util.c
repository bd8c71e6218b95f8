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

/* Logs `prefix` then `text` (cut at 8 KiB). */
void log_text(log_level level, const char* prefix, const char* text) {
  char line[8192];
  snprintf(line, sizeof line, "%s%s", prefix, text);
  if (g_context == NULL) return;
  if (level == LOG_INFO) OrthancPluginLogInfo(g_context, line);
  else if (level == LOG_WARNING) OrthancPluginLogWarning(g_context, line);
  else OrthancPluginLogError(g_context, line);
}

void log_message(log_level level, const char* format, ...) {
  char text[8192];
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(text, sizeof text, format, arguments);
  va_end(arguments);
  log_text(level, PLUGIN_NAME ": ", text);
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

int is_stopping(void) { return __atomic_load_n(&g_stopping, __ATOMIC_ACQUIRE); }
void set_stopping(int stopping) { __atomic_store_n(&g_stopping, stopping, __ATOMIC_RELEASE); }
