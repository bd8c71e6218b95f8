/* The storage area's callbacks (any Orthanc thread, concurrently): each is one request to the daemon. */
#include "bridge.h"

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

/* Range reads only when the daemon serves them (its READY line): else Orthanc reads whole attachments, and
 * stores a DicomUntilPixelData header per instance, as with the official plugins' encryption. */
void storage_register(int range) {
  OrthancPluginRegisterStorageArea2(g_context, storage_create, storage_read_whole, range ? storage_read_range : NULL,
                                    storage_remove);
}
