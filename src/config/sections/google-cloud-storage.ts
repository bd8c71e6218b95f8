// The `GoogleCloudStorage` section (spec §3.4): its options type, schema, reader and `config check` lines.
// The Google driver (stores/gcs.ts) imports its options from here.

import type { BackendSectionModule, ResolvedLine } from "../backend-section.js";
import { json } from "../backend-section.js";
import type { OptionSpec } from "../options.js";
import type { SectionReader } from "../section-reader.js";
import {
  readRetriesAndTimeouts,
  retriesAndTimeoutsLines,
  retriesAndTimeoutsOptions,
  type RetriesAndTimeouts,
} from "../transport-options.js";

/** spec §3.4 */
export interface GcsOptions extends RetriesAndTimeouts {
  /** Not set: application default credentials (the official plugin requires the file). */
  serviceAccountFile?: string;
  bucketName: string;
  /** Ours: another server (emulator, private endpoint); a plain http:// one gets no credentials. */
  endpoint?: string;
  // maxRetries (ours, as in AwsS3Storage), connectTimeoutMs (the SDK's per-request timeout for reads,
  // deletes and lists) and requestTimeoutMs (its per-request timeout for uploads): RetriesAndTimeouts.
}

const SECTION = "GoogleCloudStorage";

const OPTIONS: readonly OptionSpec[] = [
  {
    name: "ServiceAccountFile",
    type: "string",
    mayHoldSecret: true,
    filePath: true,
    since: "0.9.0",
    description:
      "Path to a service account's JSON key file. Not set: application default credentials " +
      "(`GOOGLE_APPLICATION_CREDENTIALS`, the service account attached to the VM or pod, `gcloud auth " +
      "application-default login`); the official plugin requires the file.",
  },
  { name: "BucketName", type: "string", required: true, since: "0.9.0", description: "The bucket." },
  {
    name: "Endpoint",
    type: "string",
    since: "ours",
    description:
      "Another server than Google's: a private endpoint (`https://…`, credentials sent) or an emulator " +
      "(`http://127.0.0.1:9199`, plain HTTP: no credentials sent). Not set: Google Cloud Storage.",
  },
  ...retriesAndTimeoutsOptions({
    ConnectionTimeout: {
      description:
        "Time allowed for a read, delete or list to connect and receive the start of its answer (the " +
        "Google SDK has one timeout per request). 0: no limit.",
    },
    RequestTimeout: { description: "Time allowed for one try of an upload, answer included. 0: no limit." },
  }),
];

export const googleCloudSection: BackendSectionModule<typeof SECTION> = {
  section: SECTION,
  options: OPTIONS,
  read: (r) => ({ section: SECTION, gcs: readGcs(r) }),
  lines: ({ gcs }) => lines(gcs),
};

function readGcs(r: SectionReader): GcsOptions {
  const gcs: GcsOptions = {
    bucketName: r.string("BucketName") ?? "",
    ...readRetriesAndTimeouts(r),
  };
  // Optional since ours reads application default credentials; an empty path is still a mistake.
  const serviceAccountFile = r.string("ServiceAccountFile");
  if (serviceAccountFile === "") r.fail("ServiceAccountFile", "a non-empty string", serviceAccountFile);
  else if (serviceAccountFile !== undefined) gcs.serviceAccountFile = serviceAccountFile;
  const endpoint = r.baseUrl(
    "Endpoint",
    ["http:", "https:"],
    'an http:// or https:// URL, e.g. "http://127.0.0.1:9199"',
  );
  if (endpoint !== undefined) gcs.endpoint = endpoint;
  return gcs;
}

function lines(gcs: GcsOptions): ResolvedLine[] {
  return [
    [
      "ServiceAccountFile",
      gcs.serviceAccountFile === undefined
        ? "not set (application default credentials)"
        : json(gcs.serviceAccountFile),
    ],
    ["BucketName", json(gcs.bucketName)],
    ["Endpoint", gcs.endpoint === undefined ? "not set (Google Cloud Storage)" : json(gcs.endpoint)],
    ...retriesAndTimeoutsLines(gcs),
  ];
}
