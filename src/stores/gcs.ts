// The Google Cloud Storage driver (`GoogleCloudStorage`, spec §3.4), on the official Cloud Storage SDK for
// Node.js (JSON API). Better than the official plugin: one GET per whole read (its size comes from the
// GET's own headers, no metadata request first), one single-request upload per write, deleting a missing
// object is not an error (spec §4.2: the official plugin logs false errors there), retries and timeouts
// under the AwsS3Storage option names, errors that name the cause. Beyond it: application default
// credentials when no ServiceAccountFile is given, and an Endpoint (emulator, private endpoint).

import { Readable } from "node:stream";

import {
  IdempotencyStrategy,
  Storage,
  type CreateReadStreamOptions,
  type File,
  type StorageOptions,
} from "@google-cloud/storage";

import type { GcsOptions } from "../config/sections/google-cloud-storage.js";
import type { BytePieces } from "../byte-pieces.js";
import { StorageError } from "../errors.js";
import { readWholeBody } from "./sized-body.js";
import { answerRangeWithoutFetch, badRange, rangeWithin, totalSizeOf } from "./range-errors.js";
import type { Logger } from "../log.js";
import type { ByteRange, GetOptions, ObjectBody, ObjectInfo, ObjectStore } from "./object-store.js";
import { describeGcsError, gcsStatus, isObjectNotFound, type GcsErrorContext } from "./gcs-errors.js";
import { findCredentials, readServiceAccountFile } from "./gcs-credentials.js";

/** Names the driver in messages and metrics. */
const DRIVER_NAME = "gcs";
/** Names the configuration section in messages. */
const SECTION = "GoogleCloudStorage";
/** Google's JSON API, when no Endpoint is set. */
const GOOGLE_ENDPOINT = "https://storage.googleapis.com";
/** Objects per list request: the JSON API's maximum, so a listing takes the fewest round trips. */
const LIST_PAGE_SIZE = 1000;

/** The answer's status and headers, as the SDK's read stream reports them in its "response" event. */
interface ReadResponse {
  statusCode: number;
  headers: Record<string, string | undefined>;
}

/** Checks ServiceAccountFile, then makes the client; no request is sent (the area's start-up probe does). */
export async function createGcsStore(options: GcsOptions, logger: Logger): Promise<ObjectStore> {
  const endpoint = options.endpoint ?? GOOGLE_ENDPOINT;
  // Bearer tokens never travel in clear: a plain-HTTP endpoint is an emulator, which wants none.
  const plainHttp = endpoint.toLowerCase().startsWith("http:");
  const account =
    options.serviceAccountFile === undefined
      ? undefined
      : await readServiceAccountFile(options.serviceAccountFile, !plainHttp);
  let credential: string;
  if (plainHttp) {
    credential = "no credentials (plain-HTTP Endpoint)";
    const ignored = options.serviceAccountFile === undefined ? "" : "; ServiceAccountFile is not used";
    logger.info(`${SECTION}: plain-HTTP Endpoint ${endpoint}: requests carry no credentials${ignored}`);
  } else if (account !== undefined) {
    credential =
      account.email === undefined
        ? `the credentials of ServiceAccountFile "${options.serviceAccountFile}"`
        : `service account "${account.email}"`;
  } else {
    credential = "the application default credentials";
  }
  const storageOptions: StorageOptions = {
    retryOptions: {
      autoRetry: options.maxRetries > 0,
      maxRetries: options.maxRetries,
      // Every write replaces a whole object with the same bytes, and a repeated delete finds nothing: safe.
      idempotencyStrategy: IdempotencyStrategy.RetryAlways,
    },
    // The SDK's per-request timeout (until the answer's headers) for everything but uploads.
    timeout: options.connectTimeoutMs,
  };
  if (options.endpoint !== undefined) {
    storageOptions.apiEndpoint = options.endpoint;
    storageOptions.useAuthWithCustomEndpoint = !plainHttp;
  }
  if (options.serviceAccountFile !== undefined && !plainHttp)
    storageOptions.keyFilename = options.serviceAccountFile;
  const storage = new Storage(storageOptions);
  // The SDK's read stream, when destroyed early, destroys the HTTP agent of the request it came from: with
  // the SDK's shared keep-alive pool that kills the sockets of other requests in flight (they fail with
  // "socket hang up"). Without `forever`, requests get Node's global agent, which the SDK leaves alone.
  storage.interceptors.push({ request: withoutSharedPool });
  const errorContext: GcsErrorContext = {
    endpoint,
    bucket: options.bucketName,
    credential,
    retries: options.maxRetries,
    connectTimeoutMs: options.connectTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
  };
  if (!plainHttp) await findCredentials(storage, errorContext);
  return new GcsStore(options, storage, errorContext);
}

class GcsStore implements ObjectStore {
  readonly driver = DRIVER_NAME;
  readonly location: string;

  constructor(
    private readonly options: GcsOptions,
    private readonly storage: Storage,
    private readonly errorContext: GcsErrorContext,
  ) {
    this.location = `gs://${options.bucketName}`;
  }

  private file(key: string): File {
    return this.storage.bucket(this.options.bucketName).file(key);
  }

  // https://cloud.google.com/storage/docs/json_api/v1/objects/insert (uploadType=multipart: one request)
  async put(key: string, data: Uint8Array): Promise<void> {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    await this.call("write", key, () =>
      this.file(key).save(bytes, {
        // One request; the SDK checks the CRC32C the server computed against its own.
        resumable: false,
        gzip: false,
        contentType: "application/octet-stream",
        timeout: this.options.requestTimeoutMs,
      }),
    );
  }

  /**
   * One request as put, the body the pieces written in turn, not joined: given as a function returning them
   * (a PipelineSourceFunction), which file.save calls again for each retry, where it would not retry a
   * stream it has consumed.
   */
  async putPieces(key: string, pieces: BytePieces): Promise<void> {
    await this.call("write", key, () =>
      this.file(key).save(() => pieces as Uint8Array[], {
        resumable: false,
        gzip: false,
        contentType: "application/octet-stream",
        timeout: this.options.requestTimeoutMs,
      }),
    );
  }

  /** Collected into one buffer first: this driver holds the whole object while it uploads it. */
  async putStream(key: string, body: Readable, size: number): Promise<void> {
    await this.put(key, await readWholeBody(body, size, `${this.location}/${key}`));
  }

  // https://cloud.google.com/storage/docs/json_api/v1/objects/get (alt=media)
  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<ObjectBody | null> {
    if (range === undefined) {
      const read = await this.openRead(key, {});
      if (read === null) return null;
      return { size: storedSize(read.response) ?? 0, body: read.stream };
    }
    const { start, end } = range;
    const answered = await answerRangeWithoutFetch(this, key, { start, end });
    if (answered !== undefined) return answered;
    const read = await this.openRead(key, { start, end: end - 1 });
    if (read === null) return null;
    const { response, stream } = read;
    const partial = response.statusCode === 206;
    const size = (partial ? totalSizeOf(response.headers["content-range"]) : storedSize(response)) ?? 0;
    const within = rangeWithin({ start, end }, size, options?.cutAtEnd);
    if (within === undefined) {
      // GCS cuts a range that reaches past the end; the Firebase emulator answers 200 to one past it. The
      // bytes are what `cutAtEnd` asks for, else refused.
      stream.destroy();
      throw badRange(this.location, key, start, end, size);
    }
    return { size, body: partial ? stream : slice(stream, within.start, within.end) };
  }

  // https://cloud.google.com/storage/docs/json_api/v1/objects/get (metadata)
  async head(key: string): Promise<ObjectInfo | null> {
    const answer = await this.call("stat", key, () => this.file(key).getMetadata());
    return answer === null ? null : { key, size: Number(answer[0].size ?? 0) };
  }

  // https://cloud.google.com/storage/docs/json_api/v1/objects/rewrite: the storage class changes by rewriting
  // the object onto itself with the new class; its metadata then says which class it has.
  async setStorageClass(key: string, storageClass: string): Promise<string> {
    const changed = await this.call("change the storage class of", key, () =>
      this.file(key).setStorageClass(storageClass),
    );
    const answer = changed === null ? null : await this.call("stat", key, () => this.file(key).getMetadata());
    if (answer === null) {
      throw new StorageError(
        "NOT_FOUND",
        { operation: "change the storage class", subject: this.subject(key) },
        "no such object",
      );
    }
    return String(answer[0].storageClass ?? storageClass);
  }

  // https://cloud.google.com/storage/docs/json_api/v1/objects/delete (a missing object is a success here)
  async delete(key: string): Promise<void> {
    await this.call("delete", key, () => this.file(key).delete());
  }

  // https://cloud.google.com/storage/docs/json_api/v1/objects/list
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const bucket = this.storage.bucket(this.options.bucketName);
    let pageToken: string | undefined;
    do {
      let files: File[];
      let next: { pageToken?: string } | null | undefined;
      try {
        [files, next] = await bucket.getFiles({
          prefix,
          autoPaginate: false,
          maxResults: LIST_PAGE_SIZE,
          pageToken,
        });
      } catch (cause) {
        throw this.failure("list", `${prefix}*`, cause);
      }
      for (const file of files) yield { key: file.name, size: Number(file.metadata.size ?? 0) };
      pageToken = next?.pageToken;
    } while (pageToken !== undefined);
  }

  close(): Promise<void> {
    // The SDK keeps no connection of its own: requests use Node's global agent (see createGcsStore).
    return Promise.resolve();
  }

  /**
   * One GET of the object, resolved once the answer's headers are in, so that the size comes with the body;
   * null when the object does not exist; a range starting past the end (HTTP 416) is BAD_RANGE.
   */
  private async openRead(
    key: string,
    options: CreateReadStreamOptions,
  ): Promise<{ response: ReadResponse; stream: Readable } | null> {
    try {
      return await this.call("read", key, () => openReadStream(this.file(key), options));
    } catch (error) {
      if (error instanceof StorageError && gcsStatus(error.cause) === 416) {
        throw new StorageError(
          "BAD_RANGE",
          { operation: "read range", subject: this.subject(key), cause: error.cause },
          `bytes from ${options.start ?? 0} start past the end of the object`,
        );
      }
      throw error;
    }
  }

  /** One SDK call: a missing object → null, every other failure → a StorageError an administrator can act on. */
  private async call<T>(operation: string, key: string, send: () => Promise<T>): Promise<T | null> {
    try {
      return await send();
    } catch (cause) {
      if (isObjectNotFound(cause) && operation !== "write") return null;
      throw this.failure(operation, key, cause);
    }
  }

  private failure(operation: string, key: string, cause: unknown): StorageError {
    return new StorageError(
      "STORE_FAILED",
      { operation, subject: this.subject(key), cause },
      describeGcsError(cause, this.errorContext),
    );
  }

  private subject(key: string): string {
    return `${this.location}/${key}`;
  }
}

// --- helpers ---

/** The SDK sends the request on the first read; its "response" event comes before any error it reads. */
function openReadStream(
  file: File,
  options: CreateReadStreamOptions,
): Promise<{ response: ReadResponse; stream: Readable }> {
  return new Promise((resolve, reject) => {
    const stream = file.createReadStream(options);
    stream.once("error", reject);
    stream.once("response", (response: ReadResponse) => {
      // On an error status the SDK reads the answer's body, then emits "error" with the service's message.
      if (response.statusCode >= 300) return;
      stream.off("error", reject);
      resolve({ response, stream });
    });
    stream.read(0);
  });
}

/** The whole object's size: GCS sends it apart from Content-Length (which a transcoded answer changes). */
function storedSize(response: ReadResponse): number | undefined {
  const value = response.headers["x-goog-stored-content-length"] ?? response.headers["content-length"];
  return value === undefined ? undefined : Number(value);
}

/** Bytes [start, end) of a whole-object body, for a server that ignored the Range header. */
function slice(body: Readable, start: number, end: number): Readable {
  async function* bytes(): AsyncGenerator<Uint8Array> {
    let position = 0;
    for await (const chunk of body) {
      const data = chunk as Buffer;
      const from = Math.max(start - position, 0);
      const to = Math.min(end - position, data.length);
      if (from < to) yield data.subarray(from, to);
      position += data.length;
      if (position >= end) break;
    }
  }
  return Readable.from(bytes(), { objectMode: false });
}

type RequestInterceptor = NonNullable<Storage["interceptors"][number]["request"]>;

const withoutSharedPool: RequestInterceptor = (request) => {
  request.forever = false;
  // The SDK's own options type (teeny-request's) lacks `uri` but every request it intercepts has one.
  return request as ReturnType<RequestInterceptor>;
};
