// The S3 fixture: a throwaway Ceph RGW (scripts/rgw.sh, Debian packages) on 127.0.0.1 with random keys,
// so signatures are really checked, and its buckets (bucket-fixture.ts). Also reads radosgw's access log,
// for tests that must prove how many requests reached the server (not only how many the SDK sent).

import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, open, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";

import type { S3Options } from "../src/config/types.js";
import { freshBucketName, onceCleanup, type BucketFixture, type TestServer } from "./bucket-fixture.js";
import { repoRoot } from "./paths.js";

export const rgwScript = join(repoRoot, "scripts", "rgw.sh");

export interface RgwServer extends TestServer {
  /** `http://127.0.0.1:PORT`, for path-style addressing. */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  /** The cluster's folder (config, pids, logs); removed by stop(). */
  dir: string;
  /** radosgw's log: one `beast:` access line per request, read by readRequestLog(). */
  logFile: string;
  /** Stop every daemon, wait until they are gone, remove `dir`. Safe to call more than once. */
  stop(): Promise<void>;
  /** radosgw's pid, for fault tests that kill it (SIGKILL) or freeze it (SIGSTOP, then SIGCONT). */
  gatewayPid(): Promise<number>;
  /** Start radosgw again on the same port once a test has killed it; resolves when it answers. */
  startGateway(): Promise<void>;
  /** A new, empty bucket named `prefix-<uuid>`. */
  bucket(prefix?: string): Promise<RgwBucket>;
}

export type RgwBucket = BucketFixture<S3Options, S3Client>;

interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runScript(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ScriptResult> {
  return new Promise((resolve) => {
    execFile(
      "bash",
      [rgwScript, ...args],
      { env, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null;
        resolve({
          code,
          stdout,
          stderr: error !== null && code === null ? `${stderr}\n${error.message}` : stderr,
        });
      },
    );
  });
}

const readyLine = /^RGW_READY endpoint=(\S+) access_key=(\S+) secret_key=(\S+)$/m;

/**
 * Start a single-node Ceph with radosgw in a new temporary folder; resolves once a bucket round trip
 * has worked. Rejects (never skips) with the script's output when it cannot start: a missing S3
 * server must fail the suite. If this process dies without calling stop(), the script's watchdog
 * stops the cluster and removes its folder within a few seconds.
 */
export async function startRgw(): Promise<RgwServer> {
  const dir = await mkdtemp(join(tmpdir(), "ocs-rgw-"));
  const result = await runScript(
    ["start", dir],
    { ...process.env, RGW_OWNER_PID: String(process.pid) },
    180_000,
  );
  const match = readyLine.exec(result.stdout);
  if (result.code !== 0 || match === null) {
    // The script stops what it started on failure; this covers a script killed by the timeout.
    await runScript(["stop", dir], process.env, 60_000);
    await rm(dir, { recursive: true, force: true });
    throw new Error(
      `scripts/rgw.sh start failed (exit ${result.code}):\n${result.stdout}${result.stderr}`.trimEnd(),
    );
  }
  const [, endpoint = "", accessKey = "", secretKey = ""] = match;
  let stopping: Promise<void> | undefined;
  const server: RgwServer = {
    endpoint,
    accessKey,
    secretKey,
    dir,
    logFile: join(dir, "log", "client.rgw.gw.log"),
    bucket: (prefix = "test") => rgwBucket(server, freshBucketName(prefix)),
    [Symbol.asyncDispose]: () => server.stop(),
    async gatewayPid() {
      const pid = Number((await readFile(join(dir, "rgw.pid"), "utf8")).trim());
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${join(dir, "rgw.pid")} holds no pid`);
      return pid;
    },
    async startGateway() {
      const result = await runScript(["start-gateway", dir], process.env, 120_000);
      if (result.code !== 0) {
        throw new Error(
          `scripts/rgw.sh start-gateway failed (exit ${result.code}):\n${result.stdout}${result.stderr}`.trimEnd(),
        );
      }
    },
    stop() {
      stopping ??= (async () => {
        const stopped = await runScript(["stop", dir], process.env, 60_000);
        await rm(dir, { recursive: true, force: true });
        if (stopped.code !== 0)
          throw new Error(`scripts/rgw.sh stop failed (exit ${stopped.code}):\n${stopped.stderr}`);
      })();
      return stopping;
    },
  };
  return server;
}

/** An SDK client with the settings that work against RGW 16; override the keys to test refusals. */
export function rgwClient(
  server: RgwServer,
  credentials: { accessKeyId?: string; secretAccessKey?: string } = {},
): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: {
      accessKeyId: credentials.accessKeyId ?? server.accessKey,
      secretAccessKey: credentials.secretAccessKey ?? server.secretKey,
    },
    // RGW 16 predates the SDK's default aws-chunked checksum uploads (it drops the connection).
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 1,
  });
}

/**
 * The driver's options for `bucketName` at `endpoint`, with the tests' settings (one retry less than the
 * default, 5 s to connect); `overrides` replace any field.
 */
export function testS3Options(
  target: { endpoint: string; accessKey: string; secretKey: string; bucketName: string },
  overrides: Partial<S3Options> = {},
): S3Options {
  return {
    bucketName: target.bucketName,
    region: "us-east-1",
    accessKey: target.accessKey,
    secretKey: target.secretKey,
    endpoint: target.endpoint,
    virtualAddressing: false,
    connectTimeoutMs: 5_000,
    requestTimeoutMs: 60_000,
    tags: {},
    maxConnections: 25,
    maxRetries: 2,
    useTransferManager: false,
    transferPoolSize: 4,
    transferBufferBytes: 5 * 1024 * 1024,
    enableAwsSdkLogs: false,
    checksumCalculation: "WhenRequired",
    ...overrides,
  };
}

/** Create the bucket `name` on `server` and return its fixture. */
export async function rgwBucket(server: RgwServer, name: string): Promise<RgwBucket> {
  await createBucket(server, name);
  const client = rgwClient(server);
  return {
    sectionName: "AwsS3Storage",
    name,
    client,
    orthancConfig: (extra = {}) => ({ AwsS3Storage: rgwS3Section(server, name, extra) }),
    storeOptions: (overrides = {}) => testS3Options({ ...server, bucketName: name }, overrides),
    listKeys: async () => {
      const keys: string[] = [];
      for await (const page of paginateListObjectsV2({ client }, { Bucket: name })) {
        for (const object of page.Contents ?? []) keys.push(object.Key ?? "");
      }
      return keys.sort();
    },
    read: async (key) => {
      const response = await client.send(new GetObjectCommand({ Bucket: name, Key: key }));
      return Buffer.from(
        await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
    },
    write: async (key, data) => {
      await client.send(
        new PutObjectCommand({ Bucket: name, Key: key, Body: data, ContentLength: data.length }),
      );
    },
    ...onceCleanup(async () => {
      client.destroy();
      await deleteBucketWithObjects(server, name);
    }),
  };
}

export async function createBucket(server: RgwServer, name: string): Promise<void> {
  const client = rgwClient(server);
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
}

/** Delete a bucket with every object and unfinished multipart upload in it; a missing bucket is fine. */
export async function deleteBucketWithObjects(server: RgwServer, name: string): Promise<void> {
  const client = rgwClient(server);
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: name, ContinuationToken: token }));
      const keys = (page.Contents ?? []).flatMap((item) =>
        item.Key === undefined ? [] : [{ Key: item.Key }],
      );
      if (keys.length > 0)
        await client.send(new DeleteObjectsCommand({ Bucket: name, Delete: { Objects: keys, Quiet: true } }));
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await client.send(
        new ListMultipartUploadsCommand({
          Bucket: name,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
      );
      for (const upload of page.Uploads ?? [])
        await client.send(
          new AbortMultipartUploadCommand({ Bucket: name, Key: upload.Key, UploadId: upload.UploadId }),
        );
      keyMarker = page.IsTruncated === true ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.NextUploadIdMarker;
    } while (keyMarker !== undefined);
    await client.send(new DeleteBucketCommand({ Bucket: name }));
  } catch (error) {
    if (!(error instanceof S3ServiceException && error.name === "NoSuchBucket")) throw error;
  } finally {
    client.destroy();
  }
}

/** One request as radosgw's access log saw it. */
export interface LoggedRequest {
  method: string;
  /** The request target before `?`, exactly as sent (still percent-encoded): `/bucket/key`. */
  path: string;
  /** The raw query string after `?`, `""` when none (the SDK adds e.g. `x-id=GetObject`). */
  query: string;
  status: number;
  /** Body bytes sent in the answer (0 when radosgw logs "-"). */
  bytes: number;
  /** RGW's user id, `anonymous` for unsigned requests, `-` when authentication failed. */
  user: string;
}

/** A position in the access log: requests after it are those made after markRequestLog() resolved. */
export type RequestLogMark = number;

// radosgw writes, once each request is answered:
// `... 1 beast: 0x7f..: 127.0.0.1 - test [29/Nov/2026:09:18:31.000 +0000] "GET /b/k?x-id=GetObject HTTP/1.1" 200 7 ...`
const beastLine = /\bbeast: \S+ \S+ - (\S+) \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-)/;
const markerPrefix = "/ocs-request-log-mark-";

/** Bytes [start, end) of a file as text; `end` defaults to the current end of the file. */
async function readRange(file: string, start: number, end?: number): Promise<string> {
  const handle = await open(file, "r");
  try {
    const length = Math.max(0, (end ?? (await handle.stat()).size) - start);
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, start);
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
}

async function logSize(server: RgwServer): Promise<number> {
  return (await stat(server.logFile)).size;
}

/**
 * Wait until everything radosgw answered so far is in its log file, and return the end of the log.
 * Ceph writes its log from a background thread, and radosgw logs a request only after sending the
 * answer, so a client can see a response before its line exists. An anonymous request to a unique
 * path is answered after every request this process already saw answered; once its line is in the
 * file, a short grace covers a line still in flight on another thread.
 */
async function flushLog(server: RgwServer): Promise<number> {
  const start = await logSize(server);
  const path = `${markerPrefix}${randomUUID()}`;
  await (await fetch(`${server.endpoint}${path}`)).arrayBuffer();
  const deadline = Date.now() + 10_000;
  while (!(await readRange(server.logFile, start)).includes(`"GET ${path} `)) {
    if (Date.now() > deadline) throw new Error(`radosgw never logged ${path} in ${server.logFile}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  return logSize(server);
}

/** Mark the access log now; pass the mark to readRequestLog() / countRequests(). */
export function markRequestLog(server: RgwServer): Promise<RequestLogMark> {
  return flushLog(server);
}

/** Every request radosgw answered since `mark` (the helpers' own marker requests left out). */
export async function readRequestLog(server: RgwServer, mark: RequestLogMark): Promise<LoggedRequest[]> {
  const end = await flushLog(server);
  const text = await readRange(server.logFile, mark, end);
  const requests: LoggedRequest[] = [];
  for (const line of text.split("\n")) {
    const match = beastLine.exec(line);
    if (match === null) continue;
    const [, user = "", method = "", target = "", status = "0", bytes = "-"] = match;
    const question = target.indexOf("?");
    const path = question === -1 ? target : target.slice(0, question);
    if (path.startsWith(markerPrefix)) continue;
    requests.push({
      method,
      path,
      query: question === -1 ? "" : target.slice(question + 1),
      status: Number(status),
      bytes: bytes === "-" ? 0 : Number(bytes),
      user,
    });
  }
  return requests;
}

/** How many requests radosgw answered since `mark`, optionally only those matching `predicate`. */
export async function countRequests(
  server: RgwServer,
  mark: RequestLogMark,
  predicate: (request: LoggedRequest) => boolean = () => true,
): Promise<number> {
  return (await readRequestLog(server, mark)).filter(predicate).length;
}

/**
 * An `AwsS3Storage` section that reaches `bucket` on `server` (path-style addressing, the gateway's
 * credentials); `extra` adds or overrides options (RootPath, StorageEncryption...).
 */
export function rgwS3Section(
  server: RgwServer,
  bucket: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    BucketName: bucket,
    Region: "us-east-1",
    Endpoint: server.endpoint,
    VirtualAddressing: false,
    AccessKey: server.accessKey,
    SecretKey: server.secretKey,
    ...extra,
  };
}
