// The Azure Blob driver (`AzureBlobStorage`, spec §3.3), on the official Azure Storage SDK for JavaScript.
// Better than the official plugin: one GET per whole read (its size comes from the GET's own headers, no
// GetProperties first), deleting a missing blob is not an error (spec §4.2: the official plugin logs false
// errors there), retries and timeouts under the AwsS3Storage option names, errors that name the cause.
// Beyond it: AccountUrl with the SDK's default Azure credential (managed identity) instead of a key.

import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { Socket } from "node:net";
import { Readable } from "node:stream";

import type { TokenCredential } from "@azure/identity";
import {
  AnonymousCredential,
  BlobServiceClient,
  newPipeline,
  StorageSharedKeyCredential,
  type BlobDownloadResponseParsed,
  type ContainerClient,
  type StoragePipelineOptions,
} from "@azure/storage-blob";

import type { AzureOptions } from "../config/types.js";
import { StorageError, isStorageError } from "../errors.js";
import { readWholeBody } from "./sized-body.js";
import { answerRangeWithoutFetch, badRange, totalSizeOf } from "./range-errors.js";
import type { Logger } from "../log.js";
import type { ByteRange, ObjectBody, ObjectInfo, ObjectStore } from "./object-store.js";
import {
  azureErrorCode,
  describeAzureError,
  isBlobNotFound,
  type AzureCredentialKind,
  type AzureErrorContext,
} from "./azure-errors.js";

const DRIVER_NAME = "azure";
const SECTION = "AzureBlobStorage";
/** The exponential backoff's first delay; the SDK's default (4 s) makes a start-up on a dead endpoint slow. */
const RETRY_DELAY_MS = 1000;
const MAX_RETRY_DELAY_MS = 30_000;
/** Azurite's well-known development account (public, documented by Microsoft). */
const DEVELOPMENT_ACCOUNT = "devstoreaccount1";
const DEVELOPMENT_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEVELOPMENT_ENDPOINT = `http://127.0.0.1:10000/${DEVELOPMENT_ACCOUNT}`;

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

/**
 * Open the container: checks the connection string, then creates the container when
 * CreateContainerIfNotExists is true (spec §3.3), so that wrong credentials stop start-up. Without it no
 * request is sent here; the area's start-up probe finds a missing container.
 */
export async function createAzureStore(options: AzureOptions, logger: Logger): Promise<ObjectStore> {
  const account = azureAccount(options);
  const agent = connectionAgent(account.endpoint, options.connectTimeoutMs, logger);
  const pipelineOptions: StoragePipelineOptions & { agent?: HttpAgent } = {
    retryOptions: {
      maxTries: options.maxRetries + 1,
      retryDelayInMs: RETRY_DELAY_MS,
      maxRetryDelayInMs: MAX_RETRY_DELAY_MS,
    },
    keepAliveOptions: { enable: true },
  };
  // Not a documented StoragePipelineOptions field, but passed on to the core pipeline's agent policy.
  if (agent !== undefined) pipelineOptions.agent = agent;
  const service = await serviceClient(account, pipelineOptions);
  const store = new AzureStore(options, account, service.getContainerClient(options.containerName), agent);
  if (options.createContainerIfNotExists) await store.createContainer(logger);
  return store;
}

/** The account from ConnectionString or AccountUrl (exactly one is set: the configuration checks it). */
export function azureAccount(options: Pick<AzureOptions, "connectionString" | "accountUrl">): AzureAccount {
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

async function serviceClient(
  account: AzureAccount,
  pipelineOptions: StoragePipelineOptions,
): Promise<BlobServiceClient> {
  const { credential, endpoint } = account;
  switch (credential.kind) {
    case "account key": {
      const key = new StorageSharedKeyCredential(credential.accountName, credential.accountKey);
      return new BlobServiceClient(endpoint, newPipeline(key, pipelineOptions));
    }
    case "shared access signature":
      return new BlobServiceClient(
        `${endpoint}?${credential.sas}`,
        newPipeline(new AnonymousCredential(), pipelineOptions),
      );
    case "default Azure credential": {
      // Loaded only here: @azure/identity is large and most configurations use a connection string.
      const { DefaultAzureCredential } = await import("@azure/identity");
      const token: TokenCredential = new DefaultAzureCredential();
      return new BlobServiceClient(endpoint, newPipeline(token, pipelineOptions));
    }
  }
}

/**
 * A keep-alive agent that gives up on a connection not open within ConnectionTimeout (Node has no such
 * setting). None behind an HTTP proxy: the SDK's proxy support only works without an agent of ours.
 */
function connectionAgent(endpoint: string, timeoutMs: number, logger: Logger): HttpAgent | undefined {
  const proxy = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"].some((name) => process.env[name]);
  if (proxy) {
    if (timeoutMs > 0)
      logger.info(`${SECTION}: an HTTP proxy is configured: ConnectionTimeout does not apply`);
    return undefined;
  }
  const agent = endpoint.toLowerCase().startsWith("https:")
    ? new HttpsAgent({ keepAlive: true })
    : new HttpAgent({ keepAlive: true });
  if (timeoutMs <= 0) return agent;
  const createConnection = agent.createConnection.bind(agent);
  agent.createConnection = (connectOptions, callback) => {
    const socket = createConnection(connectOptions, callback);
    if (socket instanceof Socket && socket.connecting) {
      const timer = setTimeout(() => {
        const error = new Error(
          `connect ETIMEDOUT: no connection within ConnectionTimeout (${timeoutMs / 1000} s)`,
        );
        socket.destroy(Object.assign(error, { code: "ETIMEDOUT" }));
      }, timeoutMs);
      socket.once("connect", () => clearTimeout(timer));
      socket.once("close", () => clearTimeout(timer));
    }
    return socket;
  };
  return agent;
}

class AzureStore implements ObjectStore {
  readonly driver = DRIVER_NAME;
  readonly location: string;
  private readonly errorContext: AzureErrorContext;

  constructor(
    private readonly options: AzureOptions,
    account: AzureAccount,
    private readonly container: ContainerClient,
    private readonly agent: HttpAgent | undefined,
  ) {
    this.location = `${account.endpoint}/${options.containerName}`;
    this.errorContext = {
      endpoint: account.endpoint,
      account: account.account,
      container: options.containerName,
      credential: account.credential.kind satisfies AzureCredentialKind,
      retries: options.maxRetries,
      requestTimeoutMs: options.requestTimeoutMs,
    };
  }

  // https://learn.microsoft.com/rest/api/storageservices/create-container
  async createContainer(logger: Logger): Promise<void> {
    const created = await this.call("create container", undefined, () =>
      this.container.createIfNotExists({ abortSignal: this.deadline() }),
    );
    if (created?.succeeded === true) {
      logger.warn(
        `${SECTION}: created the container "${this.options.containerName}" (CreateContainerIfNotExists), ` +
          "without public access; check in the Azure portal that it is private",
      );
    }
  }

  // https://learn.microsoft.com/rest/api/storageservices/put-blob (one request up to 256 MiB; larger
  // objects go in staged blocks: put-block, put-block-list)
  async put(key: string, data: Uint8Array): Promise<void> {
    await this.call("write", key, () =>
      this.container.getBlockBlobClient(key).uploadData(data, {
        tier: this.options.accessTier,
        blobHTTPHeaders: { blobContentType: "application/octet-stream" },
        abortSignal: this.deadline(),
      }),
    );
  }

  /** Collected into one buffer first: this driver holds the whole object while it uploads it. */
  async putStream(key: string, body: Readable, size: number): Promise<void> {
    await this.put(key, await readWholeBody(body, size, `${this.location}/${key}`));
  }

  // https://learn.microsoft.com/rest/api/storageservices/get-blob
  async get(key: string, range?: ByteRange): Promise<ObjectBody | null> {
    if (range === undefined) {
      // No Range header: the size is the answer's Content-Length.
      const response = await this.download(key, 0, undefined);
      if (response === null) return null;
      return { size: response.contentLength ?? 0, body: response.readableStreamBody as Readable };
    }
    const { start, end } = range;
    const answered = await answerRangeWithoutFetch(this, key, { start, end });
    if (answered !== undefined) return answered;
    const response = await this.download(key, start, end - start);
    if (response === null) return null;
    const size = totalSizeOf(response.contentRange) ?? response.contentLength ?? 0;
    const body = response.readableStreamBody as Readable;
    if (end > size) {
      // Azure cuts a range that reaches past the end (Azurite even answers one that starts there).
      body.destroy();
      throw badRange(this.location, key, start, end, size);
    }
    return { size, body };
  }

  // https://learn.microsoft.com/rest/api/storageservices/get-blob-properties
  async head(key: string): Promise<ObjectInfo | null> {
    const properties = await this.call("stat", key, () =>
      this.container.getBlobClient(key).getProperties({ abortSignal: this.deadline() }),
    );
    return properties === null ? null : { key, size: properties.contentLength ?? 0 };
  }

  // https://learn.microsoft.com/rest/api/storageservices/delete-blob (a missing blob is a success here)
  async delete(key: string): Promise<void> {
    await this.call("delete", key, () =>
      this.container
        .getBlobClient(key)
        .deleteIfExists({ deleteSnapshots: "include", abortSignal: this.deadline() }),
    );
  }

  // https://learn.microsoft.com/rest/api/storageservices/list-blobs
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    try {
      for await (const blob of this.container.listBlobsFlat({ prefix })) {
        yield { key: blob.name, size: blob.properties.contentLength ?? 0 };
      }
    } catch (cause) {
      throw this.failure("list", `${prefix}*`, cause);
    }
  }

  close(): Promise<void> {
    this.agent?.destroy();
    return Promise.resolve();
  }

  /** One Get Blob; null when the blob does not exist; a range starting past the end is BAD_RANGE. */
  private async download(
    key: string,
    offset: number,
    count: number | undefined,
  ): Promise<BlobDownloadResponseParsed | null> {
    try {
      return await this.call("read", key, () =>
        this.container.getBlobClient(key).download(offset, count, { abortSignal: this.deadline() }),
      );
    } catch (error) {
      if (isStorageError(error) && azureErrorCode(error.cause) === "InvalidRange") {
        throw new StorageError(
          "BAD_RANGE",
          { operation: "read range", subject: this.subject(key), cause: error.cause },
          `bytes [${offset}, ${offset + (count ?? 0)}) start past the end of the blob`,
        );
      }
      throw error;
    }
  }

  /** RequestTimeout bounds a whole operation, retries included, and the body's download (spec §3.2). */
  private deadline(): AbortSignal | undefined {
    return this.options.requestTimeoutMs > 0 ? AbortSignal.timeout(this.options.requestTimeoutMs) : undefined;
  }

  /** One SDK call: a missing blob → null, every other failure → a StorageError an administrator can act on. */
  private async call<T>(
    operation: string,
    key: string | undefined,
    send: () => Promise<T>,
  ): Promise<T | null> {
    try {
      return await send();
    } catch (cause) {
      if (isBlobNotFound(cause) && operation !== "write") return null;
      throw this.failure(operation, key, cause);
    }
  }

  private failure(operation: string, key: string | undefined, cause: unknown): StorageError {
    return new StorageError(
      "STORE_FAILED",
      { operation, subject: key === undefined ? this.location : this.subject(key), cause },
      describeAzureError(cause, this.errorContext),
    );
  }

  private subject(key: string): string {
    return `${this.location}/${key}`;
  }
}
