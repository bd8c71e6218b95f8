// Key files (spec §1.7): what `openssl rand -base64 32` writes parses, in any whitespace; everything the
// official reader would silently turn into another key is refused with a message naming the file.

import assert from "node:assert/strict";
import { chmod } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openStorageArea } from "../../src/area/open-storage-area.js";
import { keyFileExposure, parseKeyFile, readKeyFile } from "../../src/crypto/key-file.js";
import { KeyRing } from "../../src/crypto/key-ring.js";
import { localConfig } from "../helpers/local-config.js";
import { MemoryLogger } from "../helpers/memory-logger.js";
import { vectorsDir } from "../../test-support/paths.js";
import { hex, manifest, rejectsWith, tempDir } from "./support.js";

const KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
const BASE64 = Buffer.from(KEY).toString("base64");

describe("parseKeyFile accepts", () => {
  it("the vector keys, as the manifest decodes them", async () => {
    for (const key of manifest.keys) {
      assert.equal(hex(await readKeyFile(join(vectorsDir, key.file))), key.key_hex);
    }
  });

  const variants: [string, string][] = [
    ["openssl's output (44 characters and LF)", `${BASE64}\n`],
    ["no final newline", BASE64],
    ["CRLF", `${BASE64}\r\n`],
    ["without the = padding", `${BASE64.replace(/=+$/, "")}\n`],
    ["spaces and blank lines around", `\n  ${BASE64}  \n\n`],
    ["split over lines (PEM style)", `${BASE64.slice(0, 20)}\r\n${BASE64.slice(20)}\r\n`],
    ["tabs inside", `${BASE64.slice(0, 10)}\t${BASE64.slice(10)}`],
  ];
  for (const [name, text] of variants) {
    it(name, () => assert.equal(hex(parseKeyFile(text, "k")), hex(KEY)));
  }
});

describe("parseKeyFile refuses, naming the file", () => {
  const short = Buffer.alloc(31, 7).toString("base64");
  const long = Buffer.alloc(33, 7).toString("base64");
  const cases: [string, string, RegExp[]][] = [
    ["31 bytes", short, [/decodes to 31 bytes, expected 32/, /openssl rand -base64 32/, /keygen/]],
    ["33 bytes", long, [/decodes to 33 bytes, expected 32/]],
    [
      "48 bytes (two keys glued together)",
      BASE64.slice(0, 43) + BASE64.slice(0, 21),
      [/decodes to 48 bytes/],
    ],
    ["an empty file", "", [/empty/]],
    ["a file of blank lines", "\n \r\n", [/empty/]],
    [
      "base64url '-'",
      `${BASE64.slice(0, 5)}-${BASE64.slice(6)}`,
      [/"-" \(U\+002D\) at line 1, column 6/, /base64url/, /official plugin would skip/],
    ],
    ["base64url '_'", `\n${BASE64.slice(0, 2)}_${BASE64.slice(3)}`, [/"_" \(U\+005F\) at line 2, column 3/]],
    ["a hex key (before 2.0.0)", `${hex(KEY)}\n`, [/64 hex digits/, /before 2\.0\.0/, /base64/]],
    ["two keys, one per line", `${BASE64}\n${BASE64}\n`, [/padding before the end/, /more than one key/]],
    ["a byte-order mark", `\uFEFF${BASE64}`, [/U\+FEFF at line 1, column 1/, /byte-order mark/]],
    ["a quoted key", `"${BASE64}"`, [/""" \(U\+0022\) at line 1, column 1/]],
    ["a lone extra digit", BASE64.replace(/=+$/, "") + "AA", [/not valid base64/]],
  ];
  for (const [name, text, patterns] of cases) {
    it(name, async () => {
      await rejectsWith(
        () => parseKeyFile(text, "/etc/orthanc/master.key"),
        "KEY_FILE_INVALID",
        /master\.key/,
        ...patterns,
      );
    });
  }

  it("never puts key material in the message", () => {
    const leaky = `${BASE64.slice(0, 40)}-${BASE64.slice(40)}`;
    try {
      parseKeyFile(leaky, "k");
      assert.fail("accepted");
    } catch (error) {
      const message = String(error);
      for (let i = 0; i + 6 <= 40; i++) assert.ok(!message.includes(BASE64.slice(i, i + 6)), message);
    }
  });
});

describe("readKeyFile", () => {
  let files: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    files = await tempDir();
  });
  after(() => files.remove());

  it("reads a good file", async () => {
    const path = await files.write("good.b64", `${BASE64}\n`);
    assert.equal(hex(await readKeyFile(path)), hex(KEY));
  });

  it("names a missing file and the OS reason", async () => {
    const path = join(files.dir, "missing.b64");
    await rejectsWith(
      () => readKeyFile(path),
      "KEY_FILE_INVALID",
      /missing\.b64/,
      /no such file or directory \(ENOENT\)/,
    );
  });

  it("refuses a directory", async () => {
    await rejectsWith(() => readKeyFile(files.dir), "KEY_FILE_INVALID", /not a regular file/);
  });

  it("refuses a file far too large to be a key", async () => {
    const path = await files.write("big.b64", "A".repeat(100_000));
    await rejectsWith(() => readKeyFile(path), "KEY_FILE_INVALID", /100000 bytes/);
  });

  it("names the file when its content is wrong", async () => {
    const path = await files.write("short.b64", Buffer.alloc(31).toString("base64"));
    await rejectsWith(() => readKeyFile(path), "KEY_FILE_INVALID", /short\.b64: it decodes to 31 bytes/);
  });
});

describe("a key file others can use", () => {
  const path = "/etc/orthanc/master.key";
  const modes: [number, RegExp[]][] = [
    [0o640, [/mode 640/, /its group \(read\)/]],
    [0o604, [/mode 604/, /all other users \(read\)/]],
    [0o644, [/its group \(read\) and all other users \(read\)/]],
    [0o660, [/its group \(read, write\)/]],
    [0o602, [/all other users \(write\)/]],
    [0o777, [/its group \(read, write, execute\) and all other users \(read, write, execute\)/]],
  ];
  for (const [mode, patterns] of modes) {
    it(`mode ${mode.toString(8)}: a warning naming the file and \`chmod 600\``, () => {
      const warning = keyFileExposure(path, 0o100000 | mode) ?? assert.fail("no warning");
      for (const pattern of [
        /master key file \/etc\/orthanc\/master\.key/,
        /`chmod 600 \/etc\/orthanc\/master\.key`/,
        /decrypt every object/,
        ...patterns,
      ]) {
        assert.match(warning, pattern);
      }
    });
  }
  for (const mode of [0o600, 0o400, 0o700, 0o200]) {
    it(`mode ${mode.toString(8)}: no warning (the owner only)`, () => {
      assert.equal(keyFileExposure(path, 0o100000 | mode), undefined);
    });
  }

  describe("on disk", () => {
    let files: Awaited<ReturnType<typeof tempDir>>;
    before(async () => {
      files = await tempDir();
    });
    after(() => files.remove());

    it("readKeyFile still reads it, and tells its warn callback once", async () => {
      const path = await files.write("shared.b64", `${BASE64}\n`);
      await chmod(path, 0o644);
      const warnings: string[] = [];
      assert.equal(hex(await readKeyFile(path, (message) => warnings.push(message))), hex(KEY));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? "", new RegExp(`${path.replace(/[.]/g, "\\.")} has mode 644.*chmod 600`));
      await chmod(path, 0o600);
      warnings.length = 0;
      await readKeyFile(path, (message) => warnings.push(message));
      assert.deepEqual(warnings, [], "no warning once it is chmod 600");
    });

    it("the key ring keeps the warning, and the daemon's storage area logs it at start-up", async () => {
      await files.write("key", `${BASE64}\n`); // localConfig's key file: <root>/key
      const key = join(files.dir, "key");
      await chmod(key, 0o640);
      const config = localConfig(files.dir, { encrypted: true });
      const ring = await KeyRing.load(config.common.encryption);
      assert.equal(ring.warnings.length, 1);
      assert.match(ring.warnings[0] ?? "", /its group \(read\)/);
      const logger = new MemoryLogger();
      await openStorageArea(config, logger);
      const logged = logger.lines.filter((line) => line.level === "warn").map((line) => line.message);
      assert.deepEqual(logged, ring.warnings);
      assert.ok(!logged.join("\n").includes(BASE64.slice(0, 16)), "the warning holds no key material");
    });
  });
});

describe("a key pasted where its file's path belongs", () => {
  // The path names no file; every message naming the file would print the key.
  const cases: [string, string, RegExp][] = [
    [
      "resolved against the configuration's folder",
      `/etc/orthanc/${BASE64}`,
      /key file \/etc\/orthanc\/<hidden>:/,
    ],
    ["as is", BASE64, /key file <hidden>:/],
    ["a hex key (before 2.0.0)", `/etc/orthanc/${hex(KEY)}`, /key file \/etc\/orthanc\/<hidden>:/],
  ];
  for (const [name, path, where] of cases) {
    it(`${name}: refused without showing it`, async () => {
      await rejectsWith(
        () => readKeyFile(path),
        "KEY_FILE_INVALID",
        where,
        /looks like a key itself/,
        /ENOENT/,
      );
      try {
        await readKeyFile(path);
      } catch (error) {
        const everything = `${String(error)} ${String((error as Error).cause)} ${JSON.stringify(error)}`;
        assert.ok(!everything.includes(BASE64.slice(0, 20)) && !everything.includes(hex(KEY).slice(0, 20)));
      }
    });
  }

  it("a real path is still named in full", async () => {
    await rejectsWith(
      () => readKeyFile("/etc/orthanc/master-1.key"),
      "KEY_FILE_INVALID",
      /\/etc\/orthanc\/master-1\.key: cannot read it/,
    );
  });
});
