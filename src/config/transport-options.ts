// The retry and timeout options, under the AwsS3Storage names (spec §3.2), defined once for every cloud
// section: the schema entries and their reader. AwsS3Storage keeps the official defaults and meanings;
// AzureBlobStorage and GoogleCloudStorage (where they are ours) the SDKs' own retry count.

import { MS_PER_SECOND, type OptionSpec } from "./options.js";
import type { SectionReader } from "./section-reader.js";

export interface RetriesAndTimeouts {
  maxRetries: number;
  /** milliseconds (seconds in the JSON) */
  connectTimeoutMs: number;
  /** milliseconds (seconds in the JSON) */
  requestTimeoutMs: number;
}

/** Ours, for AzureBlobStorage and GoogleCloudStorage: the SDKs' own retry count, S3's timeouts. */
export const CLOUD_RETRY_DEFAULT = 3;
export const CLOUD_CONNECTION_TIMEOUT_DEFAULT = 30;
export const CLOUD_REQUEST_TIMEOUT_DEFAULT = 1200;

type Entry = Partial<Omit<OptionSpec, "name" | "type" | "unit">>;
type TransportOption = "MaxRetries" | "ConnectionTimeout" | "RequestTimeout";

/** Each option as Azure and Google have it; a section changes what differs (S3: defaults, since, text). */
const TRANSPORT_OPTIONS: Record<TransportOption, OptionSpec> = {
  MaxRetries: {
    name: "MaxRetries",
    type: "unsigned",
    default: CLOUD_RETRY_DEFAULT,
    since: "ours",
    description: "Retries of a failed request, with exponential backoff.",
  },
  ConnectionTimeout: {
    name: "ConnectionTimeout",
    type: "unsigned",
    default: CLOUD_CONNECTION_TIMEOUT_DEFAULT,
    unit: "s",
    since: "ours",
    description: "Time allowed to open a connection. 0: no limit.",
  },
  RequestTimeout: {
    name: "RequestTimeout",
    type: "unsigned",
    default: CLOUD_REQUEST_TIMEOUT_DEFAULT,
    unit: "s",
    since: "ours",
    description: "Maximum time of one operation. 0: no limit.",
  },
};

/** One of the three options' schema entry, with `entry` changing what differs in this section. */
export function transportOption(name: TransportOption, entry: Entry = {}): OptionSpec {
  return { ...TRANSPORT_OPTIONS[name], ...entry };
}

/** The three, in their usual order (MaxRetries, ConnectionTimeout, RequestTimeout). */
export function retriesAndTimeoutsOptions(
  entries: Partial<Record<TransportOption, Entry>> = {},
): OptionSpec[] {
  return (Object.keys(TRANSPORT_OPTIONS) as TransportOption[]).map((name) =>
    transportOption(name, entries[name]),
  );
}

/** The three options of a section whose ConnectionTimeout has a default of its own (Azure, Google). */
export function readRetriesAndTimeouts(r: SectionReader): RetriesAndTimeouts {
  return {
    maxRetries: r.unsigned("MaxRetries"),
    connectTimeoutMs: r.unsigned("ConnectionTimeout") * MS_PER_SECOND,
    requestTimeoutMs: r.unsigned("RequestTimeout") * MS_PER_SECOND,
  };
}

/** How `config check` shows them. */
export function retriesAndTimeoutsLines(options: RetriesAndTimeouts): Array<[string, string]> {
  return [
    ["MaxRetries", JSON.stringify(options.maxRetries)],
    ["ConnectionTimeout", `${options.connectTimeoutMs / MS_PER_SECOND} s`],
    ["RequestTimeout", `${options.requestTimeoutMs / MS_PER_SECOND} s`],
  ];
}
