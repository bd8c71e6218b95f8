// What the running Orthanc offers a storage plugin, from its version (the bridge passes it to the daemon).

/** Orthanc 1.12.8 added the storage area with custom data (OrthancPluginRegisterStorageArea3). */
export const CUSTOM_DATA_SINCE = [1, 12, 8] as const;

/**
 * Orthanc 1.12.2 gives every answer sent with a status and a body (OrthancPluginSendHttpStatus) a Content-Type
 * of its own, text/plain (its NEWS: "Fix XSS in Orthanc error reporting"); older ones send none.
 */
export const STATUS_CONTENT_TYPE_SINCE = [1, 12, 2] as const;

/**
 * Whether an Orthanc of `version` ("1.13.0", "1.12.8", "mainline") keeps custom data with attachments.
 * "mainline" (a build from Orthanc's default branch) is the newest there is.
 */
export function hasCustomData(version: string): boolean {
  return isAtLeast(version, CUSTOM_DATA_SINCE);
}

/** Whether an Orthanc of `version` types the answers a plugin sends with a status other than 200 itself. */
export function typesStatusAnswers(version: string): boolean {
  return isAtLeast(version, STATUS_CONTENT_TYPE_SINCE);
}

function isAtLeast(version: string, since: readonly [number, number, number]): boolean {
  if (version === "mainline") return true;
  const parts = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (parts === null) return false;
  const [major, minor, revision] = parts.slice(1).map(Number) as [number, number, number];
  const [wantMajor, wantMinor, wantRevision] = since;
  if (major !== wantMajor) return major > wantMajor;
  if (minor !== wantMinor) return minor > wantMinor;
  return revision >= wantRevision;
}
