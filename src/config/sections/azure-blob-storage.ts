// The `AzureBlobStorage` section (spec §3.3): its options type, schema, reader and `config check` lines.
// The Azure driver (stores/azure.ts) imports its options from here; the connection string is read in
// azure-connection-string.ts beside it.

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
import { hideConnectionStringSecrets, isConnectionString } from "./azure-connection-string.js";

/** spec §3.3 */
export interface AzureOptions extends RetriesAndTimeouts {
  /** Exactly one of `connectionString` and `accountUrl` is set (checked by the configuration). */
  connectionString?: string;
  /** Ours: the account's blob endpoint, with the SDK's default Azure credential (managed identity...). */
  accountUrl?: string;
  containerName: string;
  createContainerIfNotExists: boolean;
  accessTier?: string;
  // maxRetries (ours, as in AwsS3Storage), connectTimeoutMs (time allowed to open a connection) and
  // requestTimeoutMs (one whole operation, body and retries included): RetriesAndTimeouts.
}

const SECTION = "AzureBlobStorage";

/** spec §3.3 */
export const AZURE_ACCESS_TIERS = ["Hot", "Cool", "Archive", "Premium", "Cold"] as const;

/** Azure container names: 3–63 lowercase letters, digits and single hyphens, or a reserved `$` name. */
const AZURE_CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$/;
const AZURE_RESERVED_CONTAINERS = ["$root", "$web", "$logs"];

const OPTIONS: readonly OptionSpec[] = [
  {
    name: "ConnectionString",
    type: "string",
    secret: true,
    since: "0.9.0",
    description:
      "Azure storage connection string (`Name=value` pairs separated by `;`): `AccountName` and `AccountKey`, " +
      "or a `SharedAccessSignature` with a `BlobEndpoint`, or `UseDevelopmentStorage=true`. Spaces and line " +
      "ends around it are trimmed (since 0.9.3). Required unless AccountUrl is set (the official plugin always " +
      "requires it). Never shown in messages; `config check` hides its AccountKey.",
  },
  {
    name: "AccountUrl",
    type: "string",
    mayHoldSecret: true,
    since: "ours",
    description:
      "Instead of ConnectionString: the account's blob endpoint, e.g. `https://<account>.blob.core.windows.net`, " +
      "reached with the default Azure credential (managed identity, workload identity, `AZURE_*` environment " +
      "variables, Azure CLI login). The identity needs the Storage Blob Data Contributor role.",
  },
  {
    name: "ContainerName",
    type: "string",
    required: true,
    since: "0.9.0",
    description:
      "The container (3 to 63 lowercase letters, digits and single hyphens, or `$root`). Trimmed like " +
      "ConnectionString.",
  },
  {
    name: "CreateContainerIfNotExists",
    type: "boolean",
    default: true,
    since: "1.2.0",
    description:
      "Create the container at start-up when missing, without public access, with a warning (check in the " +
      "portal that it is private). false: a missing container stops start-up.",
  },
  {
    name: "AccessTier",
    type: "enum",
    values: AZURE_ACCESS_TIERS,
    since: "2.5.2",
    description: "Access tier of new blobs. Not set: the account's default.",
  },
  ...retriesAndTimeoutsOptions({
    RequestTimeout: {
      description:
        "Maximum time to upload or download one object (the whole body), retries included; the same for " +
        "stat, delete and container creation. 0: no limit.",
    },
  }),
];

export const azureBlobSection: BackendSectionModule<typeof SECTION> = {
  section: SECTION,
  options: OPTIONS,
  read: (r) => ({ section: SECTION, azure: readAzure(r) }),
  lines: ({ azure }) => lines(azure),
};

function readAzure(r: SectionReader): AzureOptions {
  // spec §3.3: both are trimmed (spaces, CR, LF) since 0.9.3; an end of line made the URI invalid.
  const connectionString = r.string("ConnectionString")?.trim();
  if (connectionString === "") r.fail("ConnectionString", "a non-empty string", connectionString);
  else if (connectionString !== undefined && !isConnectionString(connectionString)) {
    r.fail("ConnectionString", '"Name=value" pairs separated by ";"', connectionString);
  }
  const accountUrl = readAccountUrl(r);
  // Ours: AccountUrl is the alternative to the official ConnectionString; exactly one of the two.
  if (!r.has("ConnectionString") && !r.has("AccountUrl")) {
    r.fail("ConnectionString", "a non-empty string", undefined, "ConnectionString or AccountUrl is required");
  } else if (r.has("ConnectionString") && r.has("AccountUrl")) {
    r.fail("AccountUrl", "nothing when ConnectionString is set (one or the other)", r.raw("AccountUrl"));
  }
  const containerName = r.string("ContainerName")?.trim();
  if (containerName !== undefined && !isContainerName(containerName)) {
    r.fail(
      "ContainerName",
      "3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
      r.raw("ContainerName"),
    );
  }
  const azure: AzureOptions = {
    containerName: containerName ?? "",
    createContainerIfNotExists: r.boolean("CreateContainerIfNotExists"),
    ...readRetriesAndTimeouts(r),
  };
  if (connectionString) azure.connectionString = connectionString;
  if (accountUrl !== undefined) azure.accountUrl = accountUrl;
  const accessTier = r.oneOf("AccessTier", AZURE_ACCESS_TIERS);
  if (accessTier !== undefined) azure.accessTier = accessTier;
  return azure;
}

/** Ours: bearer tokens only travel over TLS, and a SAS belongs in a connection string. */
function readAccountUrl(r: SectionReader): string | undefined {
  return r.baseUrl(
    "AccountUrl",
    ["https:"],
    'an https:// URL without query, e.g. "https://<account>.blob.core.windows.net"',
    (url) => (url?.search ? "a SAS token goes into ConnectionString as SharedAccessSignature" : undefined),
  );
}

function isContainerName(value: string): boolean {
  return AZURE_CONTAINER_NAME.test(value) || AZURE_RESERVED_CONTAINERS.includes(value);
}

function lines(azure: AzureOptions): ResolvedLine[] {
  return [
    [
      "ConnectionString",
      azure.connectionString === undefined
        ? "not set"
        : json(hideConnectionStringSecrets(azure.connectionString)),
    ],
    [
      "AccountUrl",
      azure.accountUrl === undefined ? "not set" : `${json(azure.accountUrl)} (default Azure credential)`,
    ],
    ["ContainerName", json(azure.containerName)],
    ["CreateContainerIfNotExists", json(azure.createContainerIfNotExists)],
    ["AccessTier", azure.accessTier === undefined ? "not set" : json(azure.accessTier)],
    ...retriesAndTimeoutsLines(azure),
  ];
}
