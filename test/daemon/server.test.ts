import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readlink, rename, rm, writeFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { openStorageArea } from "../../src/area/open-storage-area.js";
import { decodeRecord, encodeRecord } from "../../src/area/attachment-record.js";
import type { DirectPlaintext } from "../../src/area/direct-file-read.js";
import type { EncryptedCodec } from "../../src/crypto/encrypted-codec.js";
import {
  CreateFlag,
  FILE_HOLD_MS,
  Op,
  OrthancCode,
  RequestFlag,
  encodeRequestHeader,
} from "../../src/daemon/protocol.js";
import { listenForBridge, type BridgeServer } from "../../src/daemon/server.js";
import { freesAtOnce } from "../../src/free-memory.js";
import { BridgeClient } from "../../test-support/bridge-client.js";
import { localConfig } from "../helpers/local-config.js";
import { MemoryLogger } from "../helpers/memory-logger.js";

for (const encrypted of [false, true]) {
  describe(`daemon socket server (encryption ${encrypted ? "on" : "off"})`, () => {
    let root: string;
    let server: BridgeServer;
    let socketPath: string;
    const logger = new MemoryLogger();

    before(async () => {
      root = await mkdtemp(join(tmpdir(), "ocs-server-"));
      await writeFile(join(root, "key"), randomBytes(32).toString("base64"));
      const config = localConfig(root, { encrypted, keyId: 7, maxConcurrentInputBytes: 256 * 1024 * 1024 });
      socketPath = join(root, "bridge.sock");
      server = await listenForBridge(socketPath, await openStorageArea(config, logger), logger);
    });
    after(async () => {
      await server.close();
      await rm(root, { recursive: true, force: true });
    });

    it("creates the socket readable and writable by its owner only", async () => {
      assert.equal((await stat(socketPath)).mode & 0o777, 0o600);
    });

    it("answers create, read whole, read range and remove with Orthanc's codes", async () => {
      const client = await BridgeClient.connect(socketPath);
      const uuid = randomUUID();
      const data = randomBytes(5000);
      const call = (op: (typeof Op)[keyof typeof Op], size = 0, start = 0) =>
        client.call({ op, contentType: 1, size, start, uuid }, op === Op.CREATE ? data : undefined);
      assert.deepEqual(await call(Op.CREATE, data.length), { code: 0, data: Buffer.alloc(0) });
      assert.deepEqual(await call(Op.READ_WHOLE), { code: 0, data });
      assert.deepEqual(await call(Op.READ_RANGE, 656, 0), { code: 0, data: data.subarray(0, 656) });
      assert.equal((await call(Op.READ_RANGE, 2, 4999)).code, OrthancCode.BadRange);
      assert.equal((await call(Op.REMOVE)).code, 0);
      assert.equal((await call(Op.READ_WHOLE)).code, OrthancCode.InexistentFile);
      assert.equal((await call(Op.REMOVE)).code, 0, "removing twice is not an error");
      assert.ok(
        logger.lines.some((l) => l.level === "warn" && l.message.includes(uuid)),
        "the miss is logged with the uuid",
      );
      client.close();
    });

    it("answers a create with a record on Orthanc >= 1.12.8, and reads and removes by the record given back", async () => {
      const client = await BridgeClient.connect(socketPath);
      const uuid = randomUUID();
      const data = randomBytes(3000);
      const created = await client.call(
        {
          op: Op.CREATE,
          contentType: 1,
          flags: CreateFlag.RECORD | CreateFlag.DICOM,
          size: data.length,
          start: 0,
          uuid,
        },
        data,
      );
      assert.equal(created.code, 0);
      const record = decodeRecord(created.data, uuid);
      assert.deepEqual(record, {
        backend: "LocalObjectStorage",
        key: `${uuid}.dcm${encrypted ? ".enc" : ""}`,
        format: encrypted ? "A1" : "plaintext",
        adopted: false,
        keepOnRemove: false,
      });
      const withRecord = (op: (typeof Op)[keyof typeof Op], size = 0, start = 0, bytes = created.data) =>
        client.call({ op, contentType: 1, record: bytes.length, size, start, uuid }, bytes);
      assert.deepEqual(
        await withRecord(Op.READ_RANGE, data.length),
        { code: 0, data },
        "a whole read is a range",
      );
      // A read with a record may be a file answer too: both share the header's word at offset 12.
      const lent = await client.call(
        {
          op: Op.READ_RANGE,
          contentType: 1,
          flags: RequestFlag.FILE_ANSWER,
          record: created.data.length,
          size: 1000,
          start: 5,
          uuid,
        },
        created.data,
      );
      assert.equal(lent.code, 0);
      assert.ok(lent.data.equals(data.subarray(5, 1005)));
      assert.equal(lent.file !== undefined, !encrypted, "a file answer for a plaintext object only");
      assert.deepEqual(await withRecord(Op.READ_RANGE, 10, 100), { code: 0, data: data.subarray(100, 110) });
      // The record decides where the object is read: another key than the uuid's is followed.
      await mkdir(join(root, "objects", "moved"), { recursive: true });
      await rename(join(root, "objects", record.key), join(root, "objects", `moved/${record.key}`));
      const moved = encodeRecord({ ...record, key: `moved/${record.key}` });
      assert.deepEqual(await withRecord(Op.READ_RANGE, data.length, 0, moved), { code: 0, data });
      assert.equal((await withRecord(Op.REMOVE, 0, 0, moved)).code, 0);
      assert.equal((await withRecord(Op.READ_RANGE, data.length, 0, moved)).code, OrthancCode.InexistentFile);
      const foreign = Buffer.from('{"v":1,"path":"x"}');
      assert.equal((await withRecord(Op.READ_RANGE, 10, 0, foreign)).code, OrthancCode.CorruptedFile);
      assert.ok(
        logger.lines.some((l) => l.message.includes("not a record of this plugin")),
        "custom data of another plugin is refused, saying so",
      );
      client.close();
    });

    it(`answers a read that may be a file answer ${encrypted ? "with the decrypted bytes" : "with the object's file"}`, async () => {
      const client = await BridgeClient.connect(socketPath);
      const uuid = randomUUID();
      const data = randomBytes(300_000);
      const flags = RequestFlag.FILE_ANSWER;
      assert.equal(
        (await client.call({ op: Op.CREATE, contentType: 1, size: data.length, start: 0, uuid }, data)).code,
        0,
      );
      const whole = await client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid, flags });
      const range = await client.call({
        op: Op.READ_RANGE,
        contentType: 1,
        size: 1000,
        start: 2000,
        uuid,
        flags,
      });
      assert.equal(whole.code, 0);
      assert.ok(whole.data.equals(data));
      assert.ok(range.data.equals(data.subarray(2000, 3000)));
      assert.equal(whole.file !== undefined, !encrypted, "a file answer for a plaintext object only");
      assert.equal(range.file !== undefined, !encrypted);
      const missing = await client.call({
        op: Op.READ_WHOLE,
        contentType: 1,
        size: 0,
        start: 0,
        uuid: randomUUID(),
        flags,
      });
      assert.equal(
        missing.code,
        OrthancCode.InexistentFile,
        "a missing object is an error code, as without the flag",
      );
      assert.equal((await client.call({ op: Op.REMOVE, contentType: 1, size: 0, start: 0, uuid })).code, 0);
      client.close();
    });

    if (!encrypted) {
      it("keeps the file of a file answer open until the next request, or FILE_HOLD_MS", async () => {
        const client = await BridgeClient.connect(socketPath);
        const uuid = randomUUID();
        const data = randomBytes(1000);
        const request = {
          op: Op.READ_WHOLE,
          contentType: 1,
          size: 0,
          start: 0,
          uuid,
          flags: RequestFlag.FILE_ANSWER,
        };
        await client.call({ op: Op.CREATE, contentType: 1, size: data.length, start: 0, uuid }, data);
        const opened = async (fd: number) => readlink(`/proc/self/fd/${fd}`).catch(() => "(closed)");
        const first = await client.call(request);
        const file = await opened(first.file?.fd ?? -1);
        assert.match(file, new RegExp(uuid), "the answer's descriptor is the object's file");
        await client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid }); // without the flag
        assert.notEqual(await opened(first.file?.fd ?? -1), file, "closed at the next request");
        const second = await client.call(request);
        assert.equal(await opened(second.file?.fd ?? -1), file);
        await new Promise((resolve) => setTimeout(resolve, FILE_HOLD_MS + 300));
        assert.notEqual(await opened(second.file?.fd ?? -1), file, "closed after FILE_HOLD_MS");
        const third = await client.call(request);
        client.close();
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.notEqual(await opened(third.file?.fd ?? -1), file, "closed with the connection");
      });
    }

    it("refuses a uuid that is not canonical with ParameterOutOfRange", async () => {
      const client = await BridgeClient.connect(socketPath);
      const answer = await client.call({
        op: Op.READ_WHOLE,
        contentType: 1,
        size: 0,
        start: 0,
        uuid: "../../etc/passwd",
      });
      assert.equal(answer.code, OrthancCode.ParameterOutOfRange);
      client.close();
    });

    it("round-trips an empty attachment", async () => {
      const client = await BridgeClient.connect(socketPath);
      const uuid = randomUUID();
      assert.equal((await client.call({ op: Op.CREATE, contentType: 0, size: 0, start: 0, uuid })).code, 0);
      assert.deepEqual(await client.call({ op: Op.READ_WHOLE, contentType: 0, size: 0, start: 0, uuid }), {
        code: 0,
        data: Buffer.alloc(0),
      });
      client.close();
    });

    it("serves 60 concurrent connections, as Orthanc's 50 HTTP threads and more would open", async () => {
      const clients = await Promise.all(Array.from({ length: 60 }, () => BridgeClient.connect(socketPath)));
      const payloads = clients.map((_, i) => randomBytes(10_000 + i));
      const uuids = clients.map(() => randomUUID());
      const created = await Promise.all(
        clients.map((c, i) =>
          c.call(
            { op: Op.CREATE, contentType: 1, size: payloads[i]!.length, start: 0, uuid: uuids[i]! },
            payloads[i],
          ),
        ),
      );
      assert.ok(created.every((r) => r.code === 0));
      assert.ok(server.connections >= 60);
      const read = await Promise.all(
        clients.map((c, i) =>
          c.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid: uuids[i]! }),
        ),
      );
      read.forEach((r, i) => assert.deepEqual(r.data, payloads[i]));
      for (const client of clients) client.close();
    });

    it("streams a large attachment back whole", async () => {
      const client = await BridgeClient.connect(socketPath);
      const uuid = randomUUID();
      const data = randomBytes(20 * 1024 * 1024 + 1);
      assert.equal(
        (await client.call({ op: Op.CREATE, contentType: 1, size: data.length, start: 0, uuid }, data)).code,
        0,
      );
      const read = await client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid });
      assert.equal(read.code, 0);
      assert.ok(read.data.equals(data));
      client.close();
    });

    it("answers a streamed create that fails at once after taking the whole attachment, on the same connection", async () => {
      const client = await BridgeClient.connect(socketPath);
      const data = randomBytes(9 * 1024 * 1024); // above the 8 MiB from which creates are streamed
      const bad = await client.call(
        { op: Op.CREATE, contentType: 1, size: data.length, start: 0, uuid: "not-a-uuid" },
        data,
      );
      assert.equal(bad.code, OrthancCode.ParameterOutOfRange);
      const uuid = randomUUID();
      assert.equal(
        (await client.call({ op: Op.CREATE, contentType: 1, size: data.length, start: 0, uuid }, data)).code,
        0,
        "the connection is still in step",
      );
      const read = await client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid });
      assert.ok(read.data.equals(data));
      client.close();
    });

    it("leaves no object, not even a temporary file, when the bridge goes away in the middle of a streamed create", async () => {
      const raw = connect(socketPath);
      raw.on("error", () => undefined);
      const uuid = randomUUID();
      const size = 12 * 1024 * 1024;
      raw.write(encodeRequestHeader({ op: Op.CREATE, contentType: 1, size, start: 0, uuid }));
      raw.write(randomBytes(size / 2));
      await new Promise<void>((resolve) => raw.end(resolve));
      raw.destroy();
      // The daemon logs the failed create once it has seen the connection end.
      while (!logger.lines.some((l) => l.level === "error" && l.message.includes(uuid))) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual(
        (await readdir(join(root, "objects"))).filter((name) => name.includes(uuid)),
        [],
      );
      const client = await BridgeClient.connect(socketPath);
      const read = await client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid });
      assert.equal(read.code, OrthancCode.InexistentFile);
      client.close();
    });

    it("closes a connection that sends garbage, and keeps serving the others", async () => {
      const raw = connect(socketPath);
      const closed = new Promise<void>((resolve) => raw.on("close", () => resolve()));
      raw.on("error", () => undefined); // the daemon may reset the connection: closing is what is checked
      raw.write(Buffer.alloc(80, 0xff));
      await closed;
      const good = await BridgeClient.connect(socketPath);
      assert.equal(
        (await good.call({ op: Op.REMOVE, contentType: 0, size: 0, start: 0, uuid: randomUUID() })).code,
        0,
      );
      good.close();
      assert.ok(logger.lines.some((l) => l.level === "error" && /protocol error: bad magic/.test(l.message)));
    });
  });
}

describe("daemon socket server: memory of creates", () => {
  it("frees a create's payload once stored: the area's copy is detached, the bytes are on disk", async () => {
    const root = await mkdtemp(join(tmpdir(), "ocs-server-free-"));
    const logger = new MemoryLogger();
    const area = await openStorageArea(localConfig(root, { encrypted: false }), logger);
    const create = area.create.bind(area);
    const payloads: Uint8Array[] = [];
    area.create = (uuid, contentType, data, options) => {
      payloads.push(data);
      return create(uuid, contentType, data, options);
    };
    const socketPath = join(root, "bridge.sock");
    const server = await listenForBridge(socketPath, area, logger);
    try {
      const client = await BridgeClient.connect(socketPath);
      const uuid = randomUUID();
      const data = randomBytes(300 * 1024); // several of the socket's 64 KiB chunks
      const header = { op: Op.CREATE, contentType: 1, size: data.length, start: 0, uuid };
      assert.equal((await client.call(header, data)).code, 0);
      assert.equal(payloads.length, 1);
      // Node 20 has no ArrayBuffer.prototype.transfer: the collector frees the payload there.
      if (freesAtOnce) assert.equal(payloads[0]?.buffer.byteLength, 0, "the payload's memory was freed");
      const read = await client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid });
      assert.deepEqual(read, { code: 0, data });
      client.close();
    } finally {
      await server.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("daemon socket server: the direct path of an encrypted read", () => {
  it("answers in one writev, frees the plaintext once sent, gives the budget back; a read the budget would hold waits its turn", async () => {
    const root = await mkdtemp(join(tmpdir(), "ocs-server-direct-"));
    await writeFile(join(root, "key"), randomBytes(32).toString("base64"));
    const logger = new MemoryLogger();
    const config = localConfig(root, { encrypted: true, keyId: 7, maxConcurrentInputBytes: 4 * 1024 * 1024 });
    const area = await openStorageArea(config, logger);
    const { budget } = area.codec as EncryptedCodec;
    const decodeNow = area.decodeNow.bind(area);
    const direct: Array<DirectPlaintext | undefined> = [];
    area.decodeNow = (...args) => {
      const plain = decodeNow(...args);
      direct.push(plain);
      return plain;
    };
    const socketPath = join(root, "bridge.sock");
    const server = await listenForBridge(socketPath, area, logger);
    try {
      const client = await BridgeClient.connect(socketPath);
      const uuid = randomUUID();
      const data = randomBytes(700 * 1024); // more than one cipher output and the socket's buffer
      const header = { op: Op.CREATE, contentType: 1, size: data.length, start: 0, uuid };
      assert.equal((await client.call(header, data)).code, 0);
      for (const flags of [0, RequestFlag.FILE_ANSWER]) {
        const read = await client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid, flags });
        assert.equal(read.code, 0);
        assert.equal(read.file, undefined, "the plaintext's bytes, never a file");
        assert.ok(read.data.equals(data));
      }
      const range = await client.call({ op: Op.READ_RANGE, contentType: 1, size: 1000, start: 5, uuid });
      assert.ok(range.data.equals(data.subarray(5, 1005)));
      assert.equal(direct.length, 3, "every read took the direct path");
      for (const plain of direct) {
        assert.ok(plain && plain.decrypted.length > 1);
        // Node 20 has no ArrayBuffer.prototype.transfer: the collector frees the pieces there.
        for (const piece of plain?.decrypted ?? []) {
          if (freesAtOnce) assert.equal(piece.buffer.byteLength, 0, "freed once sent");
        }
      }
      assert.equal(budget.availableBytes, budget.capacityBytes, "the budget is back");

      const held = await budget.acquire(budget.capacityBytes, "a test", "hold");
      const waiting = client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(direct.at(-1), undefined, "the budget is full: the general read waits");
      held();
      assert.ok((await waiting).data.equals(data));
      client.close();
    } finally {
      await server.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
