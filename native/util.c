/* What every other file of the bridge uses: Orthanc's context and log, and the stop flag. */
#include "bridge.h"
#include <stdarg.h>

OrthancPluginContext* g_context;
int g_stopping;

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
