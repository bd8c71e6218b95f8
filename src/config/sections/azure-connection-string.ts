// Azure storage connection strings (`AzureBlobStorage.ConnectionString`, spec §3.3): their shape for the
// configuration check, the account they name for the driver, and their public part for `config check`.

import { StorageError } from "../../errors.js";
import { HIDDEN } from "../secret-shapes.js";

const SECTION = "AzureBlobStorage";
/** One `Name=value` segment of an Azure connection string; no value (key, URL, SAS token) holds a space. */
const AZURE_SEGMENT = /^\s*[A-Za-z][A-Za-z0-9]*\s*=\S*\s*$/;
/** Azurite's well-known development account (public, documented by Microsoft). */
const DEVELOPMENT_ACCOUNT = "devstoreaccount1";
const DEVELOPMENT_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEVELOPMENT_ENDPOINT = `http://127.0.0.1:10000/${DEVELOPMENT_ACCOUNT}`;
/**
 * Connection-string settings that are not secret; every other value (AccountKey, SharedAccessSignature,
 * anything unknown) is hidden.
 */
const AZURE_PUBLIC_SETTINGS = new Set([
  "DefaultEndpointsProtocol",
  "AccountName",
  "EndpointSuffix",
  "BlobEndpoint",
  "QueueEndpoint",
  "TableEndpoint",
  "FileEndpoint",
  "BlobSecondaryEndpoint",
  "UseDevelopmentStorage",
  "DevelopmentStorageProxyUri",
]);

/** Where and how to reach the account: what a connection string or AccountUrl says. */
export interface AzureAccount {
  /** The account's blob endpoint, without trailing slash and without SAS query. */
  endpoint: string;
  /** Known from AccountName or the endpoint; for messages. */
  account: string | undefined;
  credential:
    | { kind: "account key"; accountName: string; accountKey: string }
    | { kind: "shared access signature"; sas: string }
    | { kind: "default Azure credential" };
}

/** Whether the text is `Name=value` pairs separated by `;` (what the configuration check requires). */
export function isConnectionString(value: string): boolean {
  const segments = value.split(";").filter((s) => s.trim() !== "");
  return segments.length > 0 && segments.every((s) => AZURE_SEGMENT.test(s));
}

/** The account from ConnectionString or AccountUrl (exactly one is set: the configuration checks it). */
export function azureAccount(options: { connectionString?: string; accountUrl?: string }): AzureAccount {
  if (options.accountUrl !== undefined) {
    const endpoint = options.accountUrl.replace(/\/+$/, "");
    return { endpoint, account: accountFromUrl(endpoint), credential: { kind: "default Azure credential" } };
  }
  return parseConnectionString(options.connectionString ?? "");
}

/**
 * An Azure storage connection string, read more leniently than the SDK does (setting names in any case,
 * the https protocol and core.windows.net by default, as in the other Azure SDKs), with errors that name
 * the missing setting and never show a value.
 */
export function parseConnectionString(text: string): AzureAccount {
  const settings = new Map<string, string>();
  for (const segment of text.split(";")) {
    if (segment.trim() === "") continue;
    const equals = segment.indexOf("=");
    if (equals <= 0) throw connectionStringError("every part must be a Name=value pair");
    settings.set(segment.slice(0, equals).trim().toLowerCase(), segment.slice(equals + 1).trim());
  }
  const get = (name: string): string | undefined => {
    const value = settings.get(name.toLowerCase());
    return value === "" ? undefined : value;
  };

  if (get("UseDevelopmentStorage")?.toLowerCase() === "true") {
    return {
      endpoint: DEVELOPMENT_ENDPOINT,
      account: DEVELOPMENT_ACCOUNT,
      credential: { kind: "account key", accountName: DEVELOPMENT_ACCOUNT, accountKey: DEVELOPMENT_KEY },
    };
  }
  const accountName = get("AccountName");
  const accountKey = get("AccountKey");
  const sas = get("SharedAccessSignature")?.replace(/^\?/, "");
  let endpoint = get("BlobEndpoint")?.replace(/\/+$/, "");
  if (endpoint === undefined) {
    if (accountName === undefined) {
      throw connectionStringError("it needs AccountName, or BlobEndpoint, to know the storage account");
    }
    const protocol = (get("DefaultEndpointsProtocol") ?? "https").toLowerCase();
    if (protocol !== "https" && protocol !== "http") {
      throw connectionStringError('DefaultEndpointsProtocol must be "https" or "http"');
    }
    endpoint = `${protocol}://${accountName}.blob.${get("EndpointSuffix") ?? "core.windows.net"}`;
  } else if (!/^https?:\/\/[^/?#]+/i.test(endpoint) || /[?#]/.test(endpoint)) {
    throw connectionStringError("BlobEndpoint must be an http:// or https:// URL without query");
  }
  const account = accountName ?? accountFromUrl(endpoint);
  if (accountKey !== undefined && sas !== undefined) {
    throw connectionStringError("it has both AccountKey and SharedAccessSignature: keep one");
  }
  if (accountKey !== undefined) {
    if (accountName === undefined) throw connectionStringError("AccountKey needs AccountName");
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(accountKey) || accountKey.length % 4 !== 0) {
      throw connectionStringError("AccountKey is not base64 (copy it again from the portal's Access keys)");
    }
    return { endpoint, account, credential: { kind: "account key", accountName, accountKey } };
  }
  if (sas !== undefined) return { endpoint, account, credential: { kind: "shared access signature", sas } };
  throw connectionStringError(
    "it has neither AccountKey nor SharedAccessSignature (use AccountUrl for a managed identity)",
  );
}

/** An Azure connection string with only its public settings shown. */
export function hideConnectionStringSecrets(connectionString: string): string {
  return connectionString
    .split(";")
    .map((segment) => {
      const equals = segment.indexOf("=");
      if (equals < 0) return segment.trim() === "" ? segment : HIDDEN;
      const name = segment.slice(0, equals).trim();
      return AZURE_PUBLIC_SETTINGS.has(name) ? segment : `${segment.slice(0, equals)}=${HIDDEN}`;
    })
    .join(";");
}

function connectionStringError(problem: string): StorageError {
  return new StorageError(
    "CONFIG_INVALID",
    { operation: "open backend", subject: `${SECTION}.ConnectionString` },
    `${problem}; the connection string is not shown because it holds a secret`,
  );
}

/** `https://acct.blob.core.windows.net` → acct; `http://127.0.0.1:10000/acct` (emulator) → acct. */
function accountFromUrl(endpoint: string): string | undefined {
  const url = URL.canParse(endpoint) ? new URL(endpoint) : undefined;
  if (url === undefined) return undefined;
  const firstPathPart = url.pathname.split("/").find((part) => part !== "");
  if (firstPathPart !== undefined) return firstPathPart;
  const firstLabel = url.hostname.split(".")[0];
  return firstLabel === undefined || /^\d+$/.test(firstLabel) ? undefined : firstLabel;
}
