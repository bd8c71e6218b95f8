/* The storage area's callbacks, each one request to the daemon: docs/bridge.md#the-storage-area. */
#include "bridge.h"

static OrthancPluginErrorCode storage_create3(OrthancPluginMemoryBuffer* custom_data, const char* uuid, const void* content,
                                              uint64_t size, OrthancPluginContentType type,
                                              OrthancPluginCompressionType compression, const OrthancPluginDicomInstance* dicom) {
  uint16_t flags = custom_data == NULL ? 0 : OCS_CREATE_RECORD | (dicom != NULL ? OCS_CREATE_DICOM : 0) |
                   (compression != OrthancPluginCompressionType_None ? OCS_CREATE_COMPRESSED : 0);
  return call_daemon(&(request){.op = OCS_OP_CREATE, .verb = "create", .uuid = uuid, .type = type, .payload = content,
                                .size = size, .flags = flags, .answer = custom_data}, NULL);
}
static OrthancPluginErrorCode storage_create(const char* uuid, const void* content, int64_t size, OrthancPluginContentType type) {
  return storage_create3(NULL, uuid, content, size > 0 ? (uint64_t)size : 0, type, 0, NULL);
}
static OrthancPluginErrorCode storage_read_whole(OrthancPluginMemoryBuffer64* target, const char* uuid, OrthancPluginContentType type) {
  return call_daemon(&(request){.op = OCS_OP_READ_WHOLE, .verb = "read", .uuid = uuid, .type = type, .target = target}, NULL);
}

static OrthancPluginErrorCode storage_read_range3(OrthancPluginMemoryBuffer64* target, const char* uuid, OrthancPluginContentType type,
                                                  uint64_t start, const void* custom_data, uint32_t custom_data_size) {
  return call_daemon(&(request){.op = OCS_OP_READ_RANGE, .verb = "read a range of", .uuid = uuid, .type = type,
                                .size = target->size, .start = start, .target = target, .record = custom_data_size,
                                .record_data = custom_data}, NULL);
}
static OrthancPluginErrorCode storage_read_range(OrthancPluginMemoryBuffer64* target, const char* uuid,
                                                 OrthancPluginContentType type, uint64_t start) {
  return storage_read_range3(target, uuid, type, start, NULL, 0);
}

static OrthancPluginErrorCode storage_remove3(const char* uuid, OrthancPluginContentType type, const void* custom_data,
                                              uint32_t custom_data_size) {
  return call_daemon(&(request){.op = OCS_OP_REMOVE, .verb = "remove", .uuid = uuid, .type = type,
                                .record = custom_data_size, .record_data = custom_data}, NULL);
}
static OrthancPluginErrorCode storage_remove(const char* uuid, OrthancPluginContentType type) {
  return storage_remove3(uuid, type, NULL, 0);
}

/* Custom data when the daemon asks for it; else range reads when it serves them. */
void storage_register(int features) {
  if (features & FEATURE_CUSTOM_DATA) OrthancPluginRegisterStorageArea3(g_context, storage_create3, storage_read_range3, storage_remove3);
  else OrthancPluginRegisterStorageArea2(g_context, storage_create, storage_read_whole,
                                         features & FEATURE_RANGE ? storage_read_range : NULL, storage_remove);
}
