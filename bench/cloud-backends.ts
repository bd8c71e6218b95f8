// The three cloud servers the cloud and requests targets use, started by the test helpers (Ceph RGW,
// Azurite, the GCS emulator), each behind one small interface: the Orthanc configuration section for a
// bucket, a direct SDK write (the baseline of the cloud target), and a count of the requests the server
// received (RGW's own access log; for Azurite and the emulator, a recording proxy in front of them).

import { randomUUID } from "node:crypto";

import { PutObjectCommand } from "@aws-sdk/client-s3";

import { azuriteClient, azuriteConnectionString, startAzurite } from "../test/helpers/azurite.js";
import { emulatorClient, startGcsEmulator } from "../test/helpers/gcs-emulator.js";
import { startRecordingProxy, type RecordingServer } from "../test/helpers/http-recorder.js";
import {
  createBucket,
  rgwS3Section,
  markRequestLog,
  readRequestLog,
  rgwClient,
  startRgw,
} from "../test/helpers/rgw.js";

export interface CloudBackend {
  /** For messages and labels: "S3 (Ceph RGW)"... */
  name: string;
  /** The top-level Orthanc configuration for a fresh bucket, with extra options of the section. */
  orthancConfig(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Write an object of that bucket directly with the cloud's SDK, from this process. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Starts counting the requests the server receives; the function returned gives the counts so far. */
  startCounting(): Promise<() => Promise<RequestCount>>;
  /** Stop the server (and the proxy) by pid. */
  stop(): Promise<void>;
}

export interface RequestCount {
  /** Every request the server received. */
  requests: number;
  /** Those that read a byte range: answered 206 (RGW's log), or sent with a Range header (the proxy). */
  ranged: number;
  /** Those that write (any method but GET and HEAD: an object, or a step of a multipart upload). */
  writes: number;
}

export interface CloudBackendStarter {
  name: string;
  /** `counted`: put a recording proxy in front of servers that keep no request log of their own. */
  start(options: { counted: boolean }): Promise<CloudBackend>;
}

export const CLOUD_BACKENDS: readonly CloudBackendStarter[] = [
  {
    name: "S3 (Ceph RGW)",
    async start() {
      const server = await startRgw();
      try {
        const bucket = `bench-${randomUUID()}`;
        await createBucket(server, bucket);
        const client = rgwClient(server);
        return {
          name: this.name,
          orthancConfig: (extra = {}) => ({
            AwsS3Storage: rgwS3Section(server, bucket, extra),
          }),
          put: async (key, bytes) => {
            await client.send(
              new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.length }),
            );
          },
          startCounting: async () => {
            const mark = await markRequestLog(server);
            return async () => {
              const logged = await readRequestLog(server, mark);
              return {
                requests: logged.length,
                ranged: logged.filter((request) => request.status === 206).length,
                writes: logged.filter((request) => isWrite(request.method)).length,
              };
            };
          },
          stop: async () => {
            client.destroy();
            await server.stop();
          },
        };
      } catch (error) {
        await server.stop();
        throw error;
      }
    },
  },
  {
    name: "Azure Blob (Azurite)",
    async start({ counted }) {
      const server = await startAzurite();
      let proxy: RecordingServer | undefined;
      try {
        const container = `bench-${randomUUID()}`;
        const containerClient = azuriteClient(server).getContainerClient(container);
        await containerClient.create();
        if (counted) proxy = await startRecordingProxy(new URL(server.endpoint).origin);
        const connectionString =
          proxy === undefined
            ? server.connectionString
            : azuriteConnectionString(`${proxy.url}${new URL(server.endpoint).pathname}`);
        return {
          name: this.name,
          orthancConfig: (extra = {}) => ({
            AzureBlobStorage: { ConnectionString: connectionString, ContainerName: container, ...extra },
          }),
          put: async (key, bytes) => {
            await containerClient.getBlockBlobClient(key).uploadData(bytes);
          },
          startCounting: () => Promise.resolve(recorded(proxy, this.name)),
          stop: async () => {
            await proxy?.close();
            await server.stop();
          },
        };
      } catch (error) {
        await proxy?.close();
        await server.stop();
        throw error;
      }
    },
  },
  {
    name: "GCS (emulator)",
    async start({ counted }) {
      const server = await startGcsEmulator();
      let proxy: RecordingServer | undefined;
      try {
        // The emulator makes buckets on first use: a fresh name is an empty bucket.
        const bucket = `bench-${randomUUID()}`;
        const bucketClient = emulatorClient(server).bucket(bucket);
        if (counted) proxy = await startRecordingProxy(server.endpoint);
        return {
          name: this.name,
          orthancConfig: (extra = {}) => ({
            GoogleCloudStorage: { BucketName: bucket, Endpoint: proxy?.url ?? server.endpoint, ...extra },
          }),
          put: async (key, bytes) => {
            await bucketClient
              .file(key)
              .save(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), { resumable: false });
          },
          startCounting: () => Promise.resolve(recorded(proxy, this.name)),
          stop: async () => {
            await proxy?.close();
            await server.stop();
          },
        };
      } catch (error) {
        await proxy?.close();
        await server.stop();
        throw error;
      }
    },
  },
];

/** A counter over the proxy's record from now on. */
function recorded(proxy: RecordingServer | undefined, name: string): () => Promise<RequestCount> {
  if (proxy === undefined)
    throw new Error(`${name} was started without its recording proxy: requests cannot be counted`);
  const start = proxy.requests.length;
  return () => {
    const received = proxy.requests.slice(start);
    // Azure's SDK may send its range as x-ms-range; the others as Range.
    const ranged = received.filter(
      (request) => request.headers.range !== undefined || request.headers["x-ms-range"] !== undefined,
    );
    const writes = received.filter((request) => isWrite(request.method));
    return Promise.resolve({ requests: received.length, ranged: ranged.length, writes: writes.length });
  };
}

function isWrite(method: string): boolean {
  return method !== "GET" && method !== "HEAD";
}
