// GET /cloud-storage/locate/{uuid}[?content-type=N]: which storage holds an attachment (the primary or, in
// hybrid mode, the secondary), under which key, its size, format and key id. The REST twin of `locate`.

import type { StorageArea } from "../area/storage-area.js";
import { isStorageError } from "../errors.js";
import { assertAttachment } from "../layout/object-key.js";
import { locateAttachment, locateByRecord } from "../ops/locate.js";
import type { RestReply, RestRoute } from "./rest-router.js";

/**
 * `customData`: Orthanc keeps records (>= 1.12.8): the answer comes from the attachment's record when it has
 * one (`record` in the answer), with the object it names; else, and when that object is missing, by probing.
 * `?from=record`: the record alone, the storages untouched (200 with it, 404 without one): what the tools
 * that walk Orthanc's index ask for every attachment (src/ops/recorded-objects.ts), which then read the object
 * themselves.
 */
export function locateRoute(area: StorageArea, options: { customData?: boolean } = {}): RestRoute {
  return {
    pattern: "/cloud-storage/locate/([^/]+)",
    methods: {
      GET: async (request, callbacks) => {
        const uuid = request.groups[0] ?? "";
        const typeArgument = request.getArguments.find(([key]) => key === "content-type")?.[1];
        const contentType = typeArgument === undefined ? undefined : Number(typeArgument);
        if (contentType !== undefined && !/^\d+$/.test(typeArgument ?? "")) {
          return text(400, `content-type must be a whole number, not ${JSON.stringify(typeArgument)}`);
        }
        const from = request.getArguments.find(([key]) => key === "from")?.[1];
        if (from !== undefined && from !== "record") {
          return text(
            400,
            `from must be "record" (the attachment's record alone), not ${JSON.stringify(from)}`,
          );
        }
        try {
          assertAttachment(uuid, contentType ?? 0);
        } catch (error) {
          if (isStorageError(error)) return text(400, error.message);
          throw error;
        }
        const record =
          options.customData === true
            ? area.readRecord(uuid, await callbacks.attachmentRecord(uuid))
            : undefined;
        if (from === "record") {
          return {
            status: record === undefined ? 404 : 200,
            contentType: "application/json",
            body: `${JSON.stringify({ uuid, ...(record ? { record } : {}) }, null, 2)}\n`,
          };
        }
        let locations = record === undefined ? [] : await locateByRecord(area, uuid, record);
        if (locations.length === 0) locations = await locateAttachment(area, uuid, contentType);
        const found = locations.some((location) => location.readable);
        return {
          status: found ? 200 : 404,
          contentType: "application/json",
          body: `${JSON.stringify({ uuid, found, ...(record ? { record } : {}), locations }, null, 2)}\n`,
        };
      },
    },
  };
}

function text(status: number, message: string): RestReply {
  return { status, contentType: "text/plain; charset=utf-8", body: `${message}\n` };
}
