// Walk Orthanc's index through its REST API: every attachment of every patient, study, series and instance,
// with what Orthanc recorded about it (uuid, content type, stored size and MD5).

import { RESOURCE_LEVELS, type OrthancIndex, type ResourceLevel } from "./orthanc-api.js";
import { forEachParallel } from "./parallel.js";
import type { Progress } from "./progress.js";

/** One attachment as Orthanc's index records it. */
export interface IndexedAttachment {
  level: ResourceLevel;
  /** The Orthanc id of the resource the attachment belongs to. */
  resource: string;
  /** The attachment's name in the REST API ("dicom", "dicom-until-pixel-data", a user name...). */
  name: string;
  uuid: string;
  /** Orthanc's content type (user types 1024–65535 included; the layout names them ".unk"). */
  contentType: number;
  /**
   * Size and MD5 of the bytes Orthanc handed to the storage area: Orthanc's "Compressed" values, which equal
   * the uncompressed ones without `StorageCompression`. No MD5 when `StoreMD5ForAttachments` was false.
   */
  storedSize: number;
  storedMd5: string | undefined;
}

/** Where an attachment is in Orthanc's index, as every record of a tool that walks it names it. */
export function attachmentFields(attachment: IndexedAttachment): {
  uuid: string;
  contentType: number;
  level: ResourceLevel;
  resource: string;
  attachment: string;
} {
  const { uuid, contentType, level, resource, name } = attachment;
  return { uuid, contentType, level, resource, attachment: name };
}

export interface WalkIndexOptions {
  /** Resources fetched (and attachments handled) at the same time. */
  parallel: number;
  /** Called for each attachment, inside the walk's concurrency: its work bounds how fast the walk goes. */
  onAttachment(attachment: IndexedAttachment): Promise<void>;
  /** Called once each resource is done, for progress. */
  onResource?(): void;
}

export interface WalkIndexResult {
  resources: number;
  attachments: number;
  /** Resources or attachments deleted from Orthanc while the walk ran (404 between list and read). */
  vanished: number;
}

/** Every level, coarsest first; instance attachments (the DICOM files) are most of the work. */
export async function walkIndex(client: OrthancIndex, options: WalkIndexOptions): Promise<WalkIndexResult> {
  const result: WalkIndexResult = { resources: 0, attachments: 0, vanished: 0 };
  async function* resources(): AsyncIterable<[ResourceLevel, string]> {
    for (const level of RESOURCE_LEVELS) {
      for await (const id of client.resourceIds(level)) yield [level, id];
    }
  }
  await forEachParallel(resources(), options.parallel, async ([level, id]) => {
    const attachments = await client.attachments(level, id);
    if (attachments === null) {
      result.vanished++;
    } else {
      for (const [name, contentType] of Object.entries(attachments)) {
        const info = await client.attachmentInfo(level, id, contentType);
        if (info === null) {
          result.vanished++;
          continue;
        }
        result.attachments++;
        await options.onAttachment({
          level,
          resource: id,
          name,
          uuid: info.Uuid,
          contentType: info.ContentType,
          storedSize: info.CompressedSize,
          storedMd5:
            info.CompressedMD5 === undefined || info.CompressedMD5 === "" ? undefined : info.CompressedMD5,
        });
      }
    }
    result.resources++;
    options.onResource?.();
  });
  return result;
}

/**
 * walkIndex as a phase of `progress` named `label`, counted in resources (Orthanc's count, an estimate), with
 * `detail()` beside the count at each one: the shape of the tools that walk the index (migrate, verify).
 */
export async function walkIndexWithProgress(
  client: OrthancIndex,
  progress: Progress,
  label: string,
  options: Omit<WalkIndexOptions, "onResource"> & { detail(): string },
): Promise<WalkIndexResult> {
  progress.start(label, await client.resourceCount(), "resources");
  try {
    return await walkIndex(client, {
      parallel: options.parallel,
      onAttachment: options.onAttachment,
      onResource: () => progress.tick(options.detail()),
    });
  } finally {
    progress.stop();
  }
}
