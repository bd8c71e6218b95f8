// The daemon's start-up check of its storage (StorageArea.checkAccess): wrong credentials, a missing bucket
// or an unreachable endpoint stop Orthanc's start with the cause, rather than its first upload. Except for the
// tier behind a write-behind spool (LocalDisk.WriteBehind), whose point is to absorb an outage of its
// backend: that one is probed in the background, and a backend down at start is a warning, the spool taking
// creates meanwhile. /cloud-storage/health probes the backend on each request and reports it unreachable.

import type { StorageArea, StorageTier } from "../area/storage-area.js";
import { describeCause } from "../errors.js";
import type { Logger } from "../log.js";
import type { SpoolStore } from "../stores/spool/spool-store.js";

/**
 * Resolves once every tier without a spool answered (rejects with the first failure); the spool's tier is
 * checked without waiting, its outcome logged. `checked` settles once that background probe is over.
 */
export async function checkStorageAtStart(
  area: StorageArea,
  spool: SpoolStore | undefined,
  logger: Logger,
): Promise<{ checked: Promise<void> }> {
  const spooled = (tier: StorageTier): boolean => spool !== undefined && tier.store === spool;
  await area.checkAccess(area.tiers.filter((tier) => !spooled(tier)));
  const behindSpool = area.tiers.filter(spooled);
  if (spool === undefined || behindSpool.length === 0) return { checked: Promise.resolve() };
  const checked = area.checkAccess(behindSpool).then(
    () => undefined,
    (error: unknown) =>
      logger.warn(
        `write-behind: the backend ${spool.location} does not answer at start (${describeCause(error)}). ` +
          "This node starts anyway: creates wait in the write-behind spool and are uploaded once it " +
          "answers, but reads of objects not in the spool fail until then. /cloud-storage/health reports it",
      ),
  );
  return { checked };
}
