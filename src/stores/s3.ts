// The S3 driver (`AwsS3Storage`, spec §3.2): AWS S3 and every S3-compatible store (Ceph RGW, MinIO, ...),
// on the official AWS SDK for JavaScript v3.
// Better than the official plugin: one GET per whole read (its size comes from the GET's own headers, no
// LIST first), tags sent with the PUT itself, streamed bodies, errors that name the cause.

import { createHash } from "node:crypto";
import { Readable } from "node:stream";

import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type StorageClass,
  type GetObjectCommandOutput,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

import type { S3Options } from "../config/sections/aws-s3-storage.js";
import { StorageError, describeCause, isStorageError } from "../errors.js";
import { answerRangeWithoutFetch, badRange, rangeWithin, totalSizeOf } from "./range-errors.js";
import type { Logger } from "../log.js";
import type { ByteRange, GetOptions, ObjectBody, ObjectInfo, ObjectStore } from "./object-store.js";
import { clientConfig, normalizeEndpoint, writeParams } from "./s3-client.js";
import { describeS3Error, isS3NotFound, s3ErrorCode } from "./s3-errors.js";
import { rangedBody } from "./ranged-body.js";
import { bodyParts, readWholeBody } from "./sized-body.js";

/** Names the driver in messages and metrics. */
const DRIVER_NAME = "s3";
/** Streamed writes above this size go up in parts of this size (S3's minimum part is 5 MiB). */
export const STREAM_PART_BYTES = 8 * 1024 * 1024;
/** S3's limit on the parts of one multipart upload. */
const MAX_PARTS = 10_000;

function notFound(subject: string, operation: string): StorageError {
  return new StorageError("NOT_FOUND", { operation, subject }, "no such object");
}

/** `client` lets a test add middleware to the SDK client (e.g. to count requests); by default one is made. */
export function createS3Store(
  options: S3Options,
  logger: Logger,
  client: S3Client = new S3Client(clientConfig(options, logger)),
): ObjectStore {
  return new S3Store(options, client);
}

class S3Store implements ObjectStore {
  readonly driver = DRIVER_NAME;
  readonly location: string;

  constructor(
    private readonly options: S3Options,
    private readonly client: S3Client,
  ) {
    this.location = `s3://${options.bucketName}`;
  }

  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html
  // No putPieces: the SDK retries a request only with a body it can send again (a buffer, not a stream, and
  // it takes no function making one), so an object given as pieces is joined for it (storePieces).
  async put(key: string, data: Uint8Array): Promise<void> {
    const { options } = this;
    const common = writeParams(options, key);
    await this.call("write", key, async () => {
      if (options.useTransferManager && data.length > options.transferBufferBytes) {
        // Multipart, TransferPoolSize parts in flight (spec §3.2 UseTransferManager).
        const upload = new Upload({
          client: this.client,
          params: { ...common, Body: data },
          partSize: options.transferBufferBytes,
          queueSize: options.transferPoolSize,
          leavePartsOnError: false,
        });
        await upload.done();
        return;
      }
      // Content-MD5 on every single-request write: S3 checks it, and Object Lock buckets require it.
      const md5 = createHash("md5").update(data).digest("base64");
      await this.client.send(
        new PutObjectCommand({ ...common, Body: data, ContentLength: data.length, ContentMD5: md5 }),
      );
    });
  }

  /**
   * Up to STREAM_PART_BYTES: collected, then one PUT as above. Larger: a multipart upload of parts of
   * STREAM_PART_BYTES, each with its Content-MD5, one at a time, so the driver holds one part of the body.
   * https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html
   */
  async putStream(key: string, body: Readable, size: number): Promise<void> {
    const subject = this.subject(key);
    if (size <= STREAM_PART_BYTES) {
      await this.put(key, await readWholeBody(body, size, subject));
      return;
    }
    const { options } = this;
    const target = { Bucket: options.bucketName, Key: key };
    const created = await this.call("start multipart upload of", key, () =>
      this.client.send(new CreateMultipartUploadCommand(writeParams(options, key))),
    );
    const uploadId = created?.UploadId;
    if (uploadId === undefined) throw this.failure("write", key, new Error("S3 answered no UploadId"));
    try {
      const parts: CompletedPart[] = [];
      // S3 allows 10,000 parts: objects above 80 GB (larger than A1 allows) get larger parts.
      const partSize = Math.max(STREAM_PART_BYTES, Math.ceil(size / MAX_PARTS));
      for await (const part of bodyParts(body, size, partSize, subject)) {
        const PartNumber = parts.length + 1;
        const md5 = createHash("md5").update(part).digest("base64");
        const answer = await this.call("write", key, () =>
          this.client.send(
            new UploadPartCommand({
              ...target,
              UploadId: uploadId,
              PartNumber,
              Body: part,
              ContentLength: part.length,
              ContentMD5: md5,
            }),
          ),
        );
        parts.push({ ETag: answer?.ETag, PartNumber });
      }
      await this.call("write", key, () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            ...target,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        ),
      );
    } catch (error) {
      body.destroy();
      await this.abortUpload(key, uploadId, error);
      throw error;
    }
  }

  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_AbortMultipartUpload.html
  /** Removes the parts of a failed upload; when that fails too, the error says so next to why the upload failed. */
  private async abortUpload(key: string, uploadId: string, why: unknown): Promise<void> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.options.bucketName, Key: key, UploadId: uploadId }),
      );
    } catch (abortError) {
      throw new StorageError(
        "STORE_FAILED",
        { operation: "write", subject: this.subject(key), cause: why },
        `${describeCause(why)}; removing its parts failed too (${describeCause(abortError)}): multipart upload ` +
          `${uploadId} stays in the bucket until an AbortIncompleteMultipartUpload lifecycle rule removes it`,
      );
    }
  }

  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html
  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<ObjectBody | null> {
    if (range !== undefined) return this.getRange(key, range, options?.cutAtEnd);
    if (!this.options.useTransferManager) return this.getWhole(key);
    // The first part tells the size; the rest, if any, comes in parallel ranged GETs (spec §3.2).
    const partSize = this.options.transferBufferBytes;
    let first: GetObjectCommandOutput | null;
    try {
      first = await this.getObject(key, `bytes=0-${partSize - 1}`);
    } catch (error) {
      // S3 refuses every range of an empty object.
      if (isStorageError(error, "BAD_RANGE")) return this.getWhole(key);
      throw error;
    }
    if (first === null) return null;
    const size = totalSizeOf(first.ContentRange) ?? 0;
    const firstBody = first.Body as Readable;
    if (size <= partSize) return { size, body: firstBody };
    const openPart = (start: number, end: number) => this.openPart(key, start, end);
    return { size, body: rangedBody(firstBody, size, partSize, this.options.transferPoolSize, openPart) };
  }

  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
  async head(key: string): Promise<ObjectInfo | null> {
    const response = await this.call("stat", key, () =>
      this.client.send(new HeadObjectCommand({ Bucket: this.options.bucketName, Key: key })),
    );
    return response === null ? null : { key, size: response.ContentLength ?? 0 };
  }

  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html: S3 changes a storage class by
  // copying the object onto itself (up to 5 GB in one request), metadata and tags kept. S3 refuses a copy
  // onto itself that changes nothing, so a HEAD first (S3 leaves out the header for STANDARD), and one after
  // the copy to read the class back.
  async setStorageClass(key: string, storageClass: string): Promise<string> {
    const { bucketName } = this.options;
    const classOf = async (): Promise<string> => {
      const head = await this.call("stat", key, () =>
        this.client.send(new HeadObjectCommand({ Bucket: bucketName, Key: key })),
      );
      if (head === null) throw notFound(this.subject(key), "change the storage class");
      return head.StorageClass ?? "STANDARD";
    };
    if ((await classOf()) === storageClass) return storageClass;
    const source = `${bucketName}/${key.split("/").map(encodeURIComponent).join("/")}`;
    await this.call("change the storage class of", key, () =>
      this.client.send(
        new CopyObjectCommand({
          Bucket: bucketName,
          Key: key,
          CopySource: source,
          StorageClass: storageClass as StorageClass,
          MetadataDirective: "COPY",
          TaggingDirective: "COPY",
        }),
      ),
    );
    return classOf();
  }

  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObject.html (a missing key is a success)
  async delete(key: string): Promise<void> {
    await this.call("delete", key, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucketName, Key: key })),
    );
  }

  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const pages = paginateListObjectsV2(
      { client: this.client },
      { Bucket: this.options.bucketName, Prefix: prefix },
    );
    try {
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          if (object.Key !== undefined) yield { key: object.Key, size: object.Size ?? 0 };
        }
      }
    } catch (cause) {
      throw this.failure("list", `${prefix}*`, cause);
    }
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }

  private async getRange(
    key: string,
    { start, end }: ByteRange,
    cutAtEnd: boolean | undefined,
  ): Promise<ObjectBody | null> {
    const answered = await answerRangeWithoutFetch(this, key, { start, end });
    if (answered !== undefined) return answered;
    const response = await this.getObject(key, `bytes=${start}-${end - 1}`);
    if (response === null) return null;
    const size = totalSizeOf(response.ContentRange) ?? 0;
    const body = response.Body as Readable;
    if (rangeWithin({ start, end }, size, cutAtEnd) === undefined) {
      // S3 cuts a range that reaches past the end: the bytes are what `cutAtEnd` asks for, else refused.
      body.destroy();
      throw badRange(this.location, key, start, end, size);
    }
    return { size, body };
  }

  private async openPart(key: string, start: number, end: number): Promise<Readable> {
    const response = await this.getObject(key, `bytes=${start}-${end - 1}`);
    if (response === null) {
      throw new StorageError(
        "STORE_FAILED",
        { operation: "read", subject: this.subject(key) },
        "the object vanished during the read",
      );
    }
    return response.Body as Readable;
  }

  /** One GET of the whole object: its size comes from the same answer. */
  private async getWhole(key: string): Promise<ObjectBody | null> {
    const response = await this.getObject(key, undefined);
    if (response === null) return null;
    return { size: response.ContentLength ?? 0, body: response.Body as Readable };
  }

  /** GetObject; null when the key does not exist; a range starting past the end is BAD_RANGE. */
  private async getObject(key: string, range: string | undefined): Promise<GetObjectCommandOutput | null> {
    try {
      return await this.call("read", key, () =>
        this.client.send(new GetObjectCommand({ Bucket: this.options.bucketName, Key: key, Range: range })),
      );
    } catch (error) {
      if (error instanceof StorageError && s3ErrorCode(error.cause) === "InvalidRange") {
        throw new StorageError(
          "BAD_RANGE",
          { operation: "read range", subject: this.subject(key), cause: error.cause },
          `${range ?? "the range"} starts past the end of the object`,
        );
      }
      throw error;
    }
  }

  /** One SDK call: not found → null, every other failure → a StorageError an administrator can act on. */
  private async call<T>(operation: string, key: string, send: () => Promise<T>): Promise<T | null> {
    try {
      return await send();
    } catch (cause) {
      if (isS3NotFound(cause) && operation !== "write" && operation !== "delete") return null;
      throw this.failure(operation, key, cause);
    }
  }

  private failure(operation: string, key: string, cause: unknown): StorageError {
    return new StorageError(
      "STORE_FAILED",
      { operation, subject: this.subject(key), cause },
      describeS3Error(cause, {
        bucket: this.options.bucketName,
        accessKey: this.options.accessKey,
        endpoint: this.options.endpoint === undefined ? "AWS" : normalizeEndpoint(this.options.endpoint),
        retries: this.options.maxRetries,
      }),
    );
  }

  private subject(key: string): string {
    return `${this.location}/${key}`;
  }
}
