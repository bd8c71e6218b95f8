// One test server for a whole test file: started when the file loads, so that it boots while the file's
// other work begins, and stopped by its pid after the file's tests, also when they fail.

import { after } from "node:test";

import type { TestServer } from "../../test-support/bucket-fixture.js";

/** `start()` now; the server is stopped after the file. A failed start fails the tests that await it. */
export function serverForFile<T extends TestServer>(start: () => Promise<T>): Promise<T> {
  const started = start();
  after(async () => {
    const server = await started.catch(() => undefined); // a failed start is reported by the tests that awaited it
    await server?.stop();
  });
  return started;
}
