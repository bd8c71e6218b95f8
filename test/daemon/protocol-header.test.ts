// protocol.ts is the wire format's only source: the C header generated from it names every constant it
// exports, the bridge uses no OCS_ name the header lacks, and the READY line reads back as the bridge reads it.

import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";

import { HEADER_CONSTANTS, HEADER_GROUPS, protocolHeader } from "../../src/daemon/protocol-header.js";
import * as protocol from "../../src/daemon/protocol.js";
import { READY_SCANF_FORMAT, decodeReadyLine, encodeReadyLine } from "../../src/daemon/protocol.js";
import { repoRoot } from "../../test-support/paths.js";

const HEADER = protocolHeader();
const DEFINED = [...HEADER.matchAll(/^#define (OCS_\w+)/gm)].map((m) => m[1] as string);

describe("build/protocol.h, generated from protocol.ts", () => {
  it("has every exported constant of protocol.ts, each under one name", () => {
    const groups = new Set<unknown>(HEADER_GROUPS.map(([, group]) => group));
    const missing = Object.entries(protocol).filter(([name, value]) => {
      if (typeof value === "function") return false; // encoders, decoders, ProtocolError
      if (name === "DAEMON_ENVIRONMENT") return false; // the supervisor's (supervisor.ts), not the bridge's
      if (typeof value === "object" && !Array.isArray(value)) return !groups.has(value);
      return HEADER_CONSTANTS[`OCS_${name}`] !== value;
    });
    assert.deepEqual(
      missing.map(([name]) => name),
      [],
    );
    assert.equal(new Set(DEFINED).size, DEFINED.length, "no C name is defined twice");
  });

  it("writes values as C reads them", () => {
    assert.match(HEADER, /^#define OCS_MAGIC 0x3153434fu$/m);
    assert.match(HEADER, /^#define OCS_CODE_INTERNAL_ERROR \(-1\)$/m);
    assert.match(HEADER, /^#define OCS_CODE_INEXISTENT_FILE 13$/m);
    assert.match(HEADER, /^#define OCS_REQ_UUID 32$/m);
    assert.match(HEADER, /^#define OCS_LOG_WARNING 'W'$/m);
    assert.match(HEADER, /^#define OCS_REST_ROUTES \{"\/cloud-storage\/health", /m);
    assert.match(HEADER, /^#define OCS_SUPERVISOR_LINE_STARTING "OCS STARTING startup-timeout="$/m);
  });

  it("gives Orthanc's own values to the error codes, which the bridge hands to Orthanc as they are", async () => {
    // Orthanc's plugin SDK header, as the bridge is built against it (Debian: orthanc-dev).
    const sdk = await readFile("/usr/include/orthanc/OrthancCPlugin.h", "utf8");
    for (const [name, value] of Object.entries(protocol.OrthancCode)) {
      const declared = new RegExp(`OrthancPluginErrorCode_${name} = (-?\\d+)`).exec(sdk);
      assert.equal(Number(declared?.[1]), value, `OrthancPluginErrorCode_${name}`);
    }
  });

  it("defines every OCS_ name the bridge's C files use", async () => {
    const dir = join(repoRoot, "native");
    const used = new Set<string>();
    const local = new Set<string>();
    for (const file of await readdir(dir)) {
      const text = await readFile(join(dir, file), "utf8");
      for (const m of text.matchAll(/\bOCS_\w+/g)) used.add(m[0]);
      for (const m of text.matchAll(/^#(?:define|ifndef) (OCS_\w+)/gm)) local.add(m[1] as string);
    }
    const undefinedNames = [...used].filter((name) => !DEFINED.includes(name) && !local.has(name));
    assert.deepEqual(undefinedNames, []);
  });
});

describe("the READY line", () => {
  const ready = {
    range: true,
    customData: true,
    typeStatusAnswers: false,
    requestTimeoutS: 1200,
    connectTimeoutS: 5,
    stopGraceS: 35,
    socketPath: "/tmp/ocs-a b/bridge.sock",
  };

  it("reads back what was written, a path with spaces included", () => {
    assert.deepEqual(decodeReadyLine(encodeReadyLine(ready)), ready);
    assert.equal(decodeReadyLine("OCS READY range=1 socket=/x"), undefined, "every field is required");
  });

  it("is what the bridge's sscanf format expects, field by field", () => {
    // sscanf: %d reads the number written there, %n marks where the socket path starts.
    const pattern = new RegExp(
      `^${READY_SCANF_FORMAT.replace(/%d/g, "(\\d+)").replace("%n", "(.+)")}$`.replace(/ /g, " "),
    );
    const match = pattern.exec(encodeReadyLine({ ...ready, range: false }));
    assert.ok(match, READY_SCANF_FORMAT);
    assert.deepEqual(match.slice(1), ["0", "1", "0", "1200", "5", "35", ready.socketPath]);
  });
});
