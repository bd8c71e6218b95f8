// The setup of a driver test whose tests count the requests the driver sends (test/stores/azure.test.ts,
// gcs.test.ts): a bucket of its own on the file's server, and a recording proxy in front of that server
// (test-support/http-recorder.ts), made before the tests and removed after them, also when they fail.

import { after, before } from "node:test";

import { startRecordingProxy, type RecordingServer } from "../../test-support/http-recorder.js";

/** What the tests of one describe work on; read it in the tests, not before (the `before` sets it). */
export interface ProxiedBucket<Server, Bucket> {
  readonly server: Server;
  readonly bucket: Bucket;
  /** In front of the server: every request a store made for `proxy.url` sends is in `proxy.requests`. */
  readonly proxy: RecordingServer;
}

/**
 * Registers, in the current describe, a `before` that awaits the file's server, makes a bucket on it with
 * `open` and starts a recording proxy to `upstream` (the server's origin), and an `after` that stops the proxy
 * and removes the bucket.
 */
export function proxiedBucket<Server, Bucket extends { cleanup(): Promise<void> }>(
  started: Promise<Server>,
  open: (server: Server) => Bucket | Promise<Bucket>,
  upstream: (server: Server) => string,
): ProxiedBucket<Server, Bucket> {
  let set: ProxiedBucket<Server, Bucket> | undefined;
  let bucket: Bucket | undefined;
  let proxy: RecordingServer | undefined;
  before(async () => {
    const server = await started;
    bucket = await open(server);
    proxy = await startRecordingProxy(upstream(server));
    set = { server, bucket, proxy };
  });
  after(async () => {
    await proxy?.close();
    await bucket?.cleanup();
  });
  const current = (): ProxiedBucket<Server, Bucket> => {
    if (set === undefined) throw new Error("proxiedBucket: read before its `before` ran (or it failed)");
    return set;
  };
  return {
    get server() {
      return current().server;
    },
    get bucket() {
      return current().bucket;
    },
    get proxy() {
      return current().proxy;
    },
  };
}
