// Whether the storage area serves range reads, decided once from the configuration. The daemon tells the
// bridge in its ready line (`READY range=<0|1>`), and the bridge registers Orthanc's readRange callback
// only then. Orthanc writes a `.dcm.head` copy of every instance to a storage area without range reads
// (ServerContext: `!HasReadRange() || StorageCompression`), so this decides one PUT per instance.

import type { EncryptionOptions, ResolvedConfig } from "../config/types.js";

/**
 * Plaintext objects are read in part directly (spec §5.1), and so are v2 objects (their segments,
 * docs/encryption-format-v2.md). With A1 as the write format there are no range reads, as in the official
 * plugins (spec §5.1): an A1 object must be read whole to be authenticated. A store being converted may
 * hold both formats: with v2 configured, a range of an A1 object is read whole and sliced.
 */
export function servesRangeReads(encryption: Pick<EncryptionOptions, "enabled" | "format">): boolean {
  return !encryption.enabled || encryption.format === "v2";
}

/**
 * With several backends (docs/backends.md), range reads only when every backend serves them: Orthanc decides
 * once for the whole area, and an A1 backend would otherwise decrypt a whole object for each range.
 */
export function configServesRangeReads(config: Pick<ResolvedConfig, "common" | "backends">): boolean {
  if (config.backends === undefined) return servesRangeReads(config.common.encryption);
  return config.backends.named.every(({ common }) => servesRangeReads(common.encryption));
}
