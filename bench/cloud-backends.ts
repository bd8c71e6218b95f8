// The three cloud servers the cloud and requests targets use, started by the fixtures of test-support/
// (Ceph RGW, Azurite, the GCS emulator), each behind one small interface: the Orthanc configuration for a
// bucket, a direct SDK write (the baseline of the cloud target), and a count of the requests the server
// received (RGW's own access log; for Azurite and the emulator, a recording proxy in front of them).

import { azuriteConnectionString, startAzurite } from "../test-support/azurite.js";
import type { BucketFixture, TestServer } from "../test-support/bucket-fixture.js";
import { startGcsEmulator } from "../test-support/gcs-emulator.js";
import { startRecordingProxy, type RecordingServer } from "../test-support/http-recorder.js";
import { markRequestLog, readRequestLog, startRgw } from "../test-support/rgw.js";

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
        const bucket = await server.bucket("bench");
        return {
          name: this.name,
          orthancConfig: (extra = {}) => bucket.orthancConfig(extra),
          put: (key, bytes) => bucket.write(key, bytes),
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
          // The bucket goes with the whole cluster.
          stop: () => server.stop(),
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
      return proxiedBackend(this.name, await startAzurite(), counted, async (server) => ({
        bucket: await server.container("bench"),
        upstream: new URL(server.endpoint).origin,
        through: (proxy) => ({
          ConnectionString: azuriteConnectionString(`${proxy}${new URL(server.endpoint).pathname}`),
        }),
      }));
    },
  },
  {
    name: "GCS (emulator)",
    async start({ counted }) {
      return proxiedBackend(this.name, await startGcsEmulator(), counted, (server) =>
        Promise.resolve({
          // The emulator makes buckets on first use: a fresh name is an empty bucket.
          bucket: server.bucket("bench"),
          upstream: server.endpoint,
          through: (proxy) => ({ Endpoint: proxy }),
        }),
      );
    },
  },
];

/**
 * A backend on a server that keeps no request log of its own: with `counted`, its Orthanc section goes
 * through a recording proxy in front of `upstream` (`through` gives the options that point it there).
 */
async function proxiedBackend<Server extends TestServer>(
  name: string,
  server: Server,
  counted: boolean,
  open: (server: Server) => Promise<{
    bucket: BucketFixture<unknown, unknown>;
    upstream: string;
    through: (proxyUrl: string) => Record<string, unknown>;
  }>,
): Promise<CloudBackend> {
  let proxy: RecordingServer | undefined;
  try {
    const { bucket, upstream, through } = await open(server);
    if (counted) proxy = await startRecordingProxy(upstream);
    const redirect = proxy === undefined ? {} : through(proxy.url);
    return {
      name,
      orthancConfig: (extra = {}) => bucket.orthancConfig({ ...redirect, ...extra }),
      put: (key, bytes) => bucket.write(key, bytes),
      startCounting: () => Promise.resolve(recorded(proxy, name)),
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
}

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
