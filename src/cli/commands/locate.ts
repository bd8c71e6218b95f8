// `locate UUID --config CONFIG`: which storage holds an attachment, under which key, its size, format and
// key id. Read-only, and no key needed: the format comes from the object's first bytes.

import { assertAttachment } from "../../layout/object-key.js";
import { isStorageError } from "../../errors.js";
import { locateAttachment, type Location } from "../../ops/locate.js";
import { formatDescription } from "../../ops/stored-object.js";
import { openConfiguredArea } from "../configured-area.js";
import { ExitError, usageError } from "../exit-error.js";

export interface LocateOptions {
  uuid: string;
  config: string;
  /** Only this content type's key; every type's when absent (the uuid alone does not say the type). */
  contentType?: number;
  json: boolean;
}

const CONTENT_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: "Unknown or a user attachment",
  1: "Dicom",
  2: "DicomAsJson",
  3: "DicomUntilPixelData",
};

export async function locate(options: LocateOptions, print: (line: string) => void): Promise<void> {
  try {
    assertAttachment(options.uuid, options.contentType ?? 0);
  } catch (error) {
    if (isStorageError(error)) throw usageError(`locate: ${error.message}`);
    throw error;
  }
  const { area, description } = await openConfiguredArea(options.config);
  let locations: Location[];
  try {
    locations = await locateAttachment(area, options.uuid, options.contentType);
  } finally {
    await area.close();
  }
  const readable = locations.filter((location) => location.readable);

  if (options.json) {
    print(JSON.stringify({ uuid: options.uuid, found: readable.length > 0, locations }));
  } else {
    print(description);
    for (const location of locations) printLocation(location, print);
    const places = new Set(readable.map((location) => location.tier));
    print(
      readable.length === 0
        ? `locate ${options.uuid}: not found`
        : `locate ${options.uuid}: found in ${[...places].join(" and ")} (${readable.length} object${readable.length === 1 ? "" : "s"})`,
    );
  }
  if (readable.length === 0) {
    const tiers = area.tiers
      .map((tier) => `the ${tier.name} storage (${tier.store.location})`)
      .join(" nor in ");
    const typed = options.contentType === undefined ? "" : ` with content type ${options.contentType}`;
    throw new ExitError(`locate ${options.uuid}: no object${typed} in ${tiers}`, 1);
  }
}

function printLocation(location: Location, print: (line: string) => void): void {
  const heading = location.readable
    ? `${location.tier}: ${location.key}`
    : `${location.tier}: ${location.key} (not read by this configuration: another name than it expects)`;
  print(heading);
  print(`  store:        ${location.location}`);
  const type = location.contentType;
  print(
    `  content type: ${type === undefined ? "not in the key (legacy structure)" : `${type} (${CONTENT_TYPE_NAMES[type] ?? "user"})`}`,
  );
  print(`  stored size:  ${location.storedSize} bytes`);
  print(`  format:       ${formatDescription(location.description)}`);
}
