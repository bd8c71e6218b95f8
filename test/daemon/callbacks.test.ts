// Callbacks on a real daemon socket server, with the test playing the bridge: a REST handler and a job step
// call into "Orthanc" on the connection of their request, as many times as they need, before answering; a
// malformed answer to a callback closes that connection only.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { openStorageArea } from "../../src/area/open-storage-area.js";
import type { OrthancCallbacks } from "../../src/daemon/bridge-callbacks.js";
import {
  CALLBACK_HEADER_SIZE,
  JobStepStatus,
  Op,
  RESPONSE_HEADER_SIZE,
  decodeCallbackHeader,
  decodeJobAnswer,
  decodeResponseHeader,
  decodeRestAnswer,
  encodeCallbackAnswerHeader,
  encodeJobRequest,
  encodeRequestHeader,
  encodeRestRequest,
  serializeJob,
} from "../../src/daemon/protocol.js";
import { RestRouter } from "../../src/daemon/rest-router.js";
import { listenForBridge, type BridgeServer } from "../../src/daemon/server.js";
import { BridgeClient } from "../../test-support/bridge-client.js";
import { localConfig } from "../helpers/local-config.js";
import { MemoryLogger } from "../helpers/memory-logger.js";

const ROUTE = "/cloud-storage/locate/([^/]+)";

describe("callbacks from the daemon to Orthanc", () => {
  let root: string;
  let server: BridgeServer;
  let socketPath: string;
  const logger = new MemoryLogger();

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "ocs-callbacks-"));
    const config = localConfig(root, { encrypted: false, maxConcurrentInputBytes: 1024 });
    // A route that asks Orthanc twice, then submits a job, and answers with what it heard.
    const router = new RestRouter(
      [
        {
          pattern: ROUTE,
          methods: {
            GET: async (request, orthanc) => {
              const first = await orthanc.rest({ method: "GET", uri: `/instances/${request.groups[0]}` });
              const second = await orthanc.rest({
                method: "POST",
                uri: "/tools/echo",
                body: Buffer.from("ping"),
              });
              const job = await orthanc.submitJob({
                type: "Test",
                priority: 2,
                content: "{}",
                state: '{"n":0}',
              });
              const heard = `${first.code}:${first.body.toString()} ${second.code}:${second.body.toString()} ${job}`;
              return { status: 200, contentType: "text/plain", body: heard };
            },
          },
        },
      ],
      logger,
    );
    const jobStep = async (state: string, orthanc: OrthancCallbacks) => {
      const answer = await orthanc.rest({ method: "GET", uri: "/system" });
      const n = (JSON.parse(state) as { n: number }).n + 1;
      return {
        status: n < 2 ? JobStepStatus.Continue : JobStepStatus.Success,
        progress: n / 2,
        content: answer.body.toString(),
        state: JSON.stringify({ n }),
      };
    };
    socketPath = join(root, "bridge.sock");
    server = await listenForBridge(socketPath, await openStorageArea(config, logger), logger, {
      router,
      jobStep,
    });
  });
  after(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
  });

  /** Reads one callback and returns its kind and payload. */
  async function takeCallback(client: BridgeClient): Promise<{ kind: number; payload: Buffer }> {
    const { kind, size } = decodeCallbackHeader(await client.take(CALLBACK_HEADER_SIZE));
    return { kind, payload: await client.take(size) };
  }

  function answerCallback(client: BridgeClient, code: number, body: string): void {
    const bytes = Buffer.from(body);
    client.write(Buffer.concat([encodeCallbackAnswerHeader(code, bytes.length), bytes]));
  }

  function restRequest(id: string): Buffer {
    const payload = encodeRestRequest({
      method: "GET",
      url: `/cloud-storage/locate/${id}`,
      groups: [id],
      getArguments: [],
      headers: [],
      body: Buffer.alloc(0),
    });
    return Buffer.concat([
      encodeRequestHeader({ op: Op.REST, contentType: 0, size: payload.length, start: 0, uuid: "" }),
      payload,
    ]);
  }

  it("lets a REST handler call Orthanc's REST API and submit a job before it answers", async () => {
    const client = await BridgeClient.connect(socketPath);
    try {
      client.write(restRequest("abc"));
      const get = await takeCallback(client);
      assert.equal(get.kind, 1);
      assert.equal(get.payload.readUInt32LE(0), 1, "GET");
      assert.equal(get.payload.subarray(4).toString(), "/instances/abc\0", "the uri, then a NUL (no body)");
      answerCallback(client, 17, ""); // Orthanc's UnknownResource
      const post = await takeCallback(client);
      assert.equal(post.payload.readUInt32LE(0), 2, "POST");
      assert.equal(post.payload.subarray(4).toString(), "/tools/echo\0ping", "the uri, a NUL, the body");
      answerCallback(client, 0, "pong");
      const job = await takeCallback(client);
      assert.equal(job.kind, 2);
      assert.equal(job.payload.readInt32LE(0), 2, "priority");
      answerCallback(client, 0, "job-1");

      const { code, size } = decodeResponseHeader(await client.take(RESPONSE_HEADER_SIZE));
      assert.equal(code, 0);
      const answer = decodeRestAnswer(await client.take(size));
      assert.equal(answer.body.toString(), "17: 0:pong job-1");
    } finally {
      client.close();
    }
  });

  it("runs job steps from the serialization the bridge sends back, calling Orthanc in between", async () => {
    const client = await BridgeClient.connect(socketPath);
    try {
      let serialized = serializeJob({ content: "{}", state: '{"n":0}' });
      const statuses: number[] = [];
      for (let step = 0; step < 2; step++) {
        const payload = encodeJobRequest({ type: "Test", serialized });
        client.write(
          Buffer.concat([
            encodeRequestHeader({
              op: Op.JOB_STEP,
              contentType: 0,
              size: payload.length,
              start: 0,
              uuid: "",
            }),
            payload,
          ]),
        );
        const callback = await takeCallback(client);
        assert.equal(callback.payload.subarray(4).toString(), "/system\0");
        answerCallback(client, 0, `{"step":${step}}`);
        const { size } = decodeResponseHeader(await client.take(RESPONSE_HEADER_SIZE));
        const answer = decodeJobAnswer(await client.take(size));
        assert.equal(answer.content, `{"step":${step}}`);
        statuses.push(answer.status);
        serialized = answer.serialized;
      }
      assert.deepEqual(statuses, [JobStepStatus.Continue, JobStepStatus.Success]);
      assert.equal(serialized, serializeJob({ content: '{"step":1}', state: '{"n":2}' }));
    } finally {
      client.close();
    }
  });

  it("closes a connection whose answer to a callback is malformed, and keeps serving the others", async () => {
    const bad = await BridgeClient.connect(socketPath);
    bad.write(restRequest("x"));
    await takeCallback(bad);
    bad.write(Buffer.alloc(CALLBACK_HEADER_SIZE, 0x55)); // not "OCSC"
    await assert.rejects(bad.take(1), /connection closed/);
    bad.close();

    const good = await BridgeClient.connect(socketPath);
    try {
      const response = await good.call({
        op: Op.READ_WHOLE,
        contentType: 1,
        size: 0,
        start: 0,
        uuid: randomUUID(),
      });
      assert.equal(response.code, 13, "a plain storage request still works (InexistentFile)");
    } finally {
      good.close();
    }
  });
});
