// What the running Orthanc offers a storage plugin, from its version (the bridge passes it to the daemon).

/** Orthanc 1.12.8 added the storage area with custom data (OrthancPluginRegisterStorageArea3). */
export const CUSTOM_DATA_SINCE = [1, 12, 8] as const;

/**
 * Whether an Orthanc of `version` ("1.13.0", "1.12.8", "mainline") keeps custom data with attachments.
 * "mainline" (a build from Orthanc's default branch) is the newest there is.
 */
export function hasCustomData(version: string): boolean {
  if (version === "mainline") return true;
  const parts = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (parts === null) return false;
  const [major, minor, revision] = parts.slice(1).map(Number) as [number, number, number];
  const [wantMajor, wantMinor, wantRevision] = CUSTOM_DATA_SINCE;
  if (major !== wantMajor) return major > wantMajor;
  if (minor !== wantMinor) return minor > wantMinor;
  return revision >= wantRevision;
}
