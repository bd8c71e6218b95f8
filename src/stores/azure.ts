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

import type { AzureOptions } from "../config/sections/azure-blob-storage.js";
import { azureAccount, type AzureAccount } from "../config/sections/azure-connection-string.js";
import { joinPieces, type BytePieces } from "../byte-pieces.js";
import { StorageError, isStorageError } from "../errors.js";
import { readWholeBody } from "./sized-body.js";
import { answerRangeWithoutFetch, badRange, rangeWithin, totalSizeOf } from "./range-errors.js";
import type { Logger } from "../log.js";
import type { ByteRange, GetOptions, ObjectBody, ObjectInfo, ObjectStore } from "./object-store.js";
import {
  azureErrorCode,
  describeAzureError,
  isBlobNotFound,
  type AzureCredentialKind,
  type AzureErrorContext,
} from "./azure-errors.js";

/** Names the driver in messages and metrics. */
const DRIVER_NAME = "azure";
/** Names the configuration section in messages. */
const SECTION = "AzureBlobStorage";
/** The exponential backoff's first delay; the SDK's default (4 s) makes a start-up on a dead endpoint slow. */
const RETRY_DELAY_MS = 1000;
/** The longest wait between two tries, however many retries the backoff has doubled through. */
const MAX_RETRY_DELAY_MS = 30_000;
/** The largest object uploadData sends in one Put Blob (its maxSingleShotSize default, 256 MiB). */
const MAX_PUT_BLOB_BYTES = 256 * 1024 * 1024;
/**
 * Open the container: checks the connection string; sends no request. With CreateContainerIfNotExists (spec
 * §3.3) the container is created before the store's first request, whichever it is: the daemon's start-up
 * check of its storage is that request, so wrong credentials still stop Orthanc's start, except for a backend
 * behind a write-behind spool, which may be down at start (daemon/start-check.ts, docs/reliability.md).
 * Without it the start-up check finds a missing container.
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
  return new AzureStore(options, account, service.getContainerClient(options.containerName), agent, logger);
}

class AzureStore implements ObjectStore {
  readonly driver = DRIVER_NAME;
  readonly location: string;
  private readonly errorContext: AzureErrorContext;
  /** CreateContainerIfNotExists, until the container was created (or found): checked before each request. */
  private containerWanted: boolean;
  /** The creation under way, shared by the requests that wait for it; cleared when it failed, to try again. */
  private containerCreation: Promise<void> | undefined;

  constructor(
    private readonly options: AzureOptions,
    account: AzureAccount,
    private readonly container: ContainerClient,
    private readonly agent: HttpAgent | undefined,
    private readonly logger: Logger,
  ) {
    this.containerWanted = options.createContainerIfNotExists;
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

  /** The container created once (CreateContainerIfNotExists), before the first request that needs it. */
  private createContainer(): Promise<void> {
    this.containerCreation ??= this.sendCreateContainer().then(
      () => {
        this.containerWanted = false;
      },
      (error: unknown) => {
        this.containerCreation = undefined;
        throw error;
      },
    );
    return this.containerCreation;
  }

  // https://learn.microsoft.com/rest/api/storageservices/create-container
  private async sendCreateContainer(): Promise<void> {
    let created;
    try {
      created = await this.container.createIfNotExists({ abortSignal: this.deadline() });
    } catch (cause) {
      throw this.failure("create container", undefined, cause);
    }
    if (created.succeeded) {
      this.logger.warn(
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

  /**
   * One Put Blob whose body is the pieces read in turn, not joined: the SDK takes a function that makes the
   * body stream (HttpRequestBody), and calls it again for each retry. Above Put Blob's limit, joined and put.
   */
  async putPieces(key: string, pieces: BytePieces, size: number): Promise<void> {
    if (size > MAX_PUT_BLOB_BYTES) return this.put(key, joinPieces(pieces));
    await this.call("write", key, () =>
      this.container.getBlockBlobClient(key).upload(() => Readable.from(pieces), size, {
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
  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<ObjectBody | null> {
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
    if (rangeWithin({ start, end }, size, options?.cutAtEnd) === undefined) {
      // Azure cuts a range that reaches past the end (Azurite even answers one that starts there): the
      // bytes are what `cutAtEnd` asks for, else refused.
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

  // https://learn.microsoft.com/rest/api/storageservices/set-blob-tier: a block blob's access tier ("Hot",
  // "Cool", "Cold", "Archive") changes in place; the properties then say which tier it has.
  async setStorageClass(key: string, storageClass: string): Promise<string> {
    const blob = this.container.getBlobClient(key);
    const set = await this.call("change the access tier of", key, () =>
      blob.setAccessTier(storageClass, { abortSignal: this.deadline() }),
    );
    const properties =
      set === null
        ? null
        : await this.call("stat", key, () => blob.getProperties({ abortSignal: this.deadline() }));
    if (properties === null) {
      throw new StorageError(
        "NOT_FOUND",
        { operation: "change the access tier", subject: this.subject(key) },
        "no such blob",
      );
    }
    return properties.accessTier ?? storageClass;
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
    if (this.containerWanted) await this.createContainer();
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
    if (this.containerWanted) await this.createContainer();
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

// --- helpers ---

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
        // A socket error like Node's own: the driver reports it as a STORE_FAILED StorageError.
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
