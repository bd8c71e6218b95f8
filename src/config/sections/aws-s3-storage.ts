// The `AwsS3Storage` section (spec §3.2): its options type, schema, reader and `config check` lines. The S3
// driver (stores/s3.ts) imports its options from here.

import type { BackendSectionModule, OrthancGlobals, ResolvedLine } from "../backend-section.js";
import { json, nonEmpty } from "../backend-section.js";
import { BYTES_PER_MB, MS_PER_SECOND, type OptionSpec } from "../options.js";
import { HIDDEN } from "../secret-shapes.js";
import type { SectionReader } from "../section-reader.js";
import { transportOption } from "../transport-options.js";

/** spec §3.2 */
export interface S3Options {
  bucketName: string;
  region: string;
  accessKey?: string;
  secretKey?: string;
  endpoint?: string;
  virtualAddressing: boolean;
  /** milliseconds; `ConnectionTimeout` wins over `ConnectTimeout` (both are seconds in the JSON). */
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  storageClass?: string;
  tags: Record<string, string>;
  maxConnections: number;
  maxRetries: number;
  useTransferManager: boolean;
  transferPoolSize: number;
  /** bytes; the option is in MB */
  transferBufferBytes: number;
  enableAwsSdkLogs: boolean;
  /** Ours: when the SDK adds CRC checksums ("WhenRequired" suits every S3-compatible store). */
  checksumCalculation: "WhenRequired" | "WhenSupported";
  /** Orthanc's global `HttpsCACertificates`, when set. */
  caFile?: string;
}

const SECTION = "AwsS3Storage";

/** spec §3.2: the values the AWS SDK maps to a storage class; anything else stops the official plugin. */
export const S3_STORAGE_CLASSES = [
  "STANDARD",
  "REDUCED_REDUNDANCY",
  "STANDARD_IA",
  "ONEZONE_IA",
  "INTELLIGENT_TIERING",
  "GLACIER",
  "DEEP_ARCHIVE",
  "OUTPOSTS",
  "GLACIER_IR",
  "SNOW",
] as const;

/** Ours: when the S3 client adds CRC checksums to requests (the SDK's own setting, in Orthanc's spelling). */
export const S3_CHECKSUM_CALCULATIONS = ["WhenRequired", "WhenSupported"] as const;

/** S3 object tagging limits (AWS, and the S3-compatible servers we test). */
const S3_MAX_TAGS = 10;
const S3_MAX_TAG_KEY = 128;
const S3_MAX_TAG_VALUE = 256;

const OPTIONS: readonly OptionSpec[] = [
  { name: "BucketName", type: "string", required: true, since: "0.9.0", description: "The bucket." },
  {
    name: "Region",
    type: "string",
    required: true,
    since: "0.9.0",
    description: "The bucket's region, e.g. `eu-west-1`. Required even with an Endpoint.",
  },
  {
    name: "AccessKey",
    type: "string",
    since: "0.9.0",
    description:
      "Static credentials, with SecretKey: both or neither. Neither: the AWS default credentials chain " +
      "(environment, profile, instance role), as the official plugin does since 1.3.0.",
  },
  {
    name: "SecretKey",
    type: "string",
    secret: true,
    since: "0.9.0",
    description: "The secret of AccessKey. Never shown in messages.",
  },
  {
    name: "Endpoint",
    type: "string",
    default: "",
    since: "0.9.1",
    description:
      "S3-compatible server (MinIO, Ceph, Scaleway, …), e.g. `http://host:9000/` or a host name. Empty: AWS.",
  },
  {
    name: "VirtualAddressing",
    type: "boolean",
    default: true,
    since: "1.2.0",
    description:
      "false: path-style requests (`host/bucket/key`), needed by MinIO and most S3-compatible servers.",
  },
  {
    name: "ConnectTimeout",
    type: "unsigned",
    default: 30,
    unit: "s",
    since: "0.9.1",
    description: "Time allowed to open a connection.",
  },
  transportOption("ConnectionTimeout", {
    default: undefined,
    defaultFrom: "ConnectTimeout",
    since: "2.5.2",
    description:
      "The documented new name of ConnectTimeout; wins when both are set. The official plugin reads it but " +
      "ignores its value; we honour it.",
  }),
  transportOption("RequestTimeout", {
    since: "0.9.1",
    description:
      "Maximum time of one try of a request: until the answer starts, then the longest silence while a " +
      "body streams (a stuck server fails the operation instead of holding an Orthanc thread). Each retry " +
      "(`MaxRetries`) has its own. 0: no limit.",
  }),
  {
    name: "StorageClass",
    type: "enum",
    values: S3_STORAGE_CLASSES,
    since: "2.5.0",
    description:
      "Storage class of new objects. Not set: the bucket's or AWS's default. Cold classes are untested.",
  },
  {
    name: "Tags",
    type: "string-map",
    default: {},
    since: "2.5.2",
    description:
      "Tags set on every new object, sent with the write itself (the official plugin spends a second " +
      "request). At most 10 tags, keys of 1 to 128 " +
      "characters, values of at most 256 characters (S3 limits).",
  },
  {
    name: "MaxConnections",
    type: "unsigned",
    default: 25,
    min: 1,
    since: "2.5.4",
    description: "Size of the HTTP connection pool.",
  },
  transportOption("MaxRetries", { default: 10, since: "2.5.4" }),
  {
    name: "UseTransferManager",
    type: "boolean",
    default: false,
    since: "2.3.0",
    description:
      "Upload and download whole objects in parts, in parallel (multipart). Range reads are unchanged.",
  },
  {
    name: "TransferPoolSize",
    type: "unsigned",
    default: 10,
    min: 1,
    since: "2.3.0",
    description: "Parts transferred in parallel when UseTransferManager is true.",
  },
  {
    name: "TransferBufferSize",
    type: "unsigned",
    default: 5,
    unit: "MB",
    min: 1,
    since: "2.3.0",
    description: "Part size when UseTransferManager is true; memory used is up to size × TransferPoolSize.",
  },
  {
    name: "EnableAwsSdkLogs",
    type: "boolean",
    default: false,
    since: "2.3.1",
    description: "Log the S3 client's own messages.",
  },
  {
    name: "ChecksumCalculation",
    type: "enum",
    values: S3_CHECKSUM_CALCULATIONS,
    default: "WhenRequired",
    since: "ours",
    description:
      'When the S3 client adds CRC checksums to requests. `"WhenRequired"` works on every S3-compatible ' +
      "store (the SDK's default checksum trailers break Ceph RGW and older MinIO); writes still carry " +
      '`Content-MD5`. `"WhenSupported"` adds CRC checksums wherever AWS accepts them.',
  },
];

export const awsS3Section: BackendSectionModule<typeof SECTION> = {
  section: SECTION,
  options: OPTIONS,
  read: (r, globals) => ({ section: SECTION, s3: readS3(r, globals) }),
  lines: ({ s3 }) => lines(s3),
};

function readS3(r: SectionReader, globals: OrthancGlobals): S3Options {
  const s3: S3Options = {
    bucketName: r.string("BucketName") ?? "",
    region: r.string("Region") ?? "",
    virtualAddressing: r.boolean("VirtualAddressing"),
    connectTimeoutMs: readConnectTimeout(r) * MS_PER_SECOND,
    requestTimeoutMs: r.unsigned("RequestTimeout") * MS_PER_SECOND,
    tags: readTags(r),
    maxConnections: r.unsigned("MaxConnections"),
    maxRetries: r.unsigned("MaxRetries"),
    useTransferManager: r.boolean("UseTransferManager"),
    transferPoolSize: r.unsigned("TransferPoolSize"),
    transferBufferBytes: r.unsigned("TransferBufferSize") * BYTES_PER_MB,
    enableAwsSdkLogs: r.boolean("EnableAwsSdkLogs"),
    checksumCalculation: r.oneOf("ChecksumCalculation", S3_CHECKSUM_CALCULATIONS) ?? "WhenRequired",
  };
  const credentials = readCredentials(r);
  if (credentials !== undefined) Object.assign(s3, credentials);
  const endpoint = nonEmpty(r.string("Endpoint"));
  if (endpoint !== undefined) s3.endpoint = endpoint;
  const storageClass = r.oneOf("StorageClass", S3_STORAGE_CLASSES);
  if (storageClass !== undefined) s3.storageClass = storageClass;
  if (globals.caFile !== undefined) s3.caFile = globals.caFile;
  return s3;
}

/** spec §3.2: `ConnectionTimeout` (2.5.2) is the documented name; we honour it, and it wins. Seconds. */
function readConnectTimeout(r: SectionReader): number {
  const connect = r.unsigned("ConnectTimeout");
  const connection = r.optionalUnsigned("ConnectionTimeout");
  if (connection !== undefined && r.has("ConnectTimeout") && connection !== connect) {
    r.warn("ConnectTimeout", `ignored: ConnectionTimeout (${connection} s) is also set and wins`);
  }
  return connection ?? connect;
}

/** spec §3.2: static credentials need both keys; neither means the default credentials chain. */
function readCredentials(r: SectionReader): { accessKey: string; secretKey: string } | undefined {
  const accessKey = r.string("AccessKey");
  const secretKey = r.string("SecretKey");
  if (accessKey === "") r.fail("AccessKey", "a non-empty string", accessKey);
  if (secretKey === "") r.fail("SecretKey", "a non-empty string", secretKey);
  if (r.has("AccessKey") && !r.has("SecretKey")) {
    r.fail("SecretKey", "a string when AccessKey is set (both or neither)", undefined);
  }
  if (r.has("SecretKey") && !r.has("AccessKey")) {
    r.fail("AccessKey", "a string when SecretKey is set (both or neither)", undefined);
  }
  return accessKey && secretKey ? { accessKey, secretKey } : undefined;
}

function readTags(r: SectionReader): Record<string, string> {
  const tags = r.stringMap("Tags");
  const entries = Object.entries(tags);
  if (entries.length > S3_MAX_TAGS) r.fail("Tags", `at most ${S3_MAX_TAGS} tags (S3 limit)`, r.raw("Tags"));
  for (const [key, value] of entries) {
    const path = `${r.pathOf("Tags")}.${key}`;
    if (key.length === 0 || key.length > S3_MAX_TAG_KEY) {
      r.failAt(path, `a tag name of 1 to ${S3_MAX_TAG_KEY} characters (S3 limit)`, key);
    }
    if (value.length > S3_MAX_TAG_VALUE) {
      r.failAt(path, `a tag value of at most ${S3_MAX_TAG_VALUE} characters (S3 limit)`, value);
    }
  }
  return tags;
}

function lines(s3: S3Options): ResolvedLine[] {
  return [
    ["BucketName", json(s3.bucketName)],
    ["Region", json(s3.region)],
    ["AccessKey", s3.accessKey === undefined ? "not set (default credentials chain)" : json(s3.accessKey)],
    ["SecretKey", s3.secretKey === undefined ? "not set" : HIDDEN],
    ["Endpoint", s3.endpoint === undefined ? "not set (AWS)" : json(s3.endpoint)],
    ["VirtualAddressing", json(s3.virtualAddressing)],
    ["ConnectionTimeout", `${s3.connectTimeoutMs / MS_PER_SECOND} s`],
    ["RequestTimeout", `${s3.requestTimeoutMs / MS_PER_SECOND} s`],
    ["StorageClass", s3.storageClass === undefined ? "not set" : json(s3.storageClass)],
    ["Tags", json(s3.tags)],
    ["MaxConnections", json(s3.maxConnections)],
    ["MaxRetries", json(s3.maxRetries)],
    ["UseTransferManager", json(s3.useTransferManager)],
    ["TransferPoolSize", json(s3.transferPoolSize)],
    ["TransferBufferSize", `${s3.transferBufferBytes / BYTES_PER_MB} MB`],
    ["EnableAwsSdkLogs", json(s3.enableAwsSdkLogs)],
    ["HttpsCACertificates", s3.caFile === undefined ? "not set (system CAs)" : json(s3.caFile)],
  ];
}
