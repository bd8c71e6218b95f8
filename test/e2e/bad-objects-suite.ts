// Bad objects in the bucket, through a real Orthanc (issue 7, bad input): each scenario plants a corrupted,
// truncated, foreign or wrongly encrypted object in place of a stored instance's DICOM object, then reads
// the instance through Orthanc's REST API. The read must fail (never 200, never a byte of the object or of
// the file), Orthanc's log must name the object key and the cause, and Orthanc must stay consistent: the
// other instances read back intact, the index keeps every instance, and putting the original object back
// makes the instance readable again (nothing lost). The backend is seen through an independent client.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { encryptA1 } from "../../src/crypto/a1-cipher.js";
import { KeyRing } from "../../src/crypto/key-ring.js";
import type { BucketFixture } from "../../test-support/bucket-fixture.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomDir } from "../../test-support/paths.js";

/** Our site's master key (id 1), and another site's keys. */
const OUR_KEY = Buffer.alloc(32, 0x5a);
const OTHER_SITE_KEY = Buffer.alloc(32, 0xa5);

/**
 * A backend as these scenarios see it: its section, and raw access to its objects by key. A bucket
 * fixture of test-support/ is one.
 */
export type RawBackend = Pick<
  BucketFixture<unknown, unknown>,
  "orthancConfig" | "read" | "write" | "cleanup"
>;

export interface Scenario {
  name: string;
  /** The object to plant, from the stored one and the original DICOM file. */
  plant(stored: Buffer, original: Buffer): Uint8Array;
  /** What Orthanc's log must say about the object (after its key). */
  cause: RegExp;
}

/** One bit flipped at `offset` (negative: from the end). */
function flipped(stored: Buffer, offset: number): Buffer {
  const copy = Buffer.from(stored);
  const at = offset < 0 ? copy.length + offset : offset;
  copy[at] = (copy[at] as number) ^ 0x04;
  return copy;
}

function otherSite(keyId: number, key: Buffer, plaintext: Uint8Array): Uint8Array {
  return encryptA1(plaintext, new KeyRing({ id: keyId, key }), "another site's object");
}

const INTEGRITY = /integrity check failed/;

/** With encryption on (A1 objects expected). */
export const ENCRYPTED_SCENARIOS: readonly Scenario[] = [
  { name: "a bit flipped in the ciphertext", plant: (s) => flipped(s, 70 + 1000), cause: INTEGRITY },
  { name: "a bit flipped in the header (EIV)", plant: (s) => flipped(s, 10), cause: INTEGRITY },
  { name: "a bit flipped in the header (EDEK)", plant: (s) => flipped(s, 40), cause: INTEGRITY },
  {
    name: "a bit flipped in the key id",
    plant: (s) => flipped(s, 2),
    cause: /master key id 5 .*not configured/,
  },
  { name: "a bit flipped in the version", plant: (s) => flipped(s, 1), cause: /not an A1 object/ },
  { name: "a bit flipped in the tag", plant: (s) => flipped(s, -1), cause: INTEGRITY },
  { name: "truncated by one byte", plant: (s) => s.subarray(0, s.length - 1), cause: INTEGRITY },
  {
    name: "truncated within the header",
    plant: (s) => s.subarray(0, 50),
    cause: /too short to be an A1 object/,
  },
  { name: "emptied (0 bytes)", plant: () => new Uint8Array(0), cause: /no header found/ },
  { name: "extended by one byte", plant: (s) => Buffer.concat([s, Buffer.of(0)]), cause: INTEGRITY },
  {
    name: "random bytes (a foreign object)",
    plant: (s) => Buffer.from(Array.from({ length: s.length }, (_, i) => (i * 7919 + 13) % 256)),
    cause: /not an A1 object/,
  },
  {
    name: "another site's A1 object under an unknown key id (missing key)",
    plant: (_s, original) => otherSite(99, OTHER_SITE_KEY, original),
    cause: /master key id 99 \(hex 63000000 .*not configured/,
  },
  {
    name: "an A1 object under our key id but another key (wrong master key)",
    plant: (_s, original) => otherSite(1, OTHER_SITE_KEY, original),
    cause: INTEGRITY,
  },
  {
    name: "the plaintext DICOM file (written with encryption off)",
    plant: (_s, original) => original,
    cause: /not an A1 object: .*a plaintext DICOM file/,
  },
];

/** With encryption off (plaintext expected). */
export const PLAINTEXT_SCENARIOS: readonly Scenario[] = [
  {
    name: "an A1 object of our own key (an encrypted bucket read with encryption off)",
    plant: (_s, original) => otherSite(1, OUR_KEY, original),
    cause: /an A1-encrypted object under master key id '01000000', but StorageEncryption is disabled/,
  },
  {
    name: "another site's A1 object",
    plant: (_s, original) => otherSite(7, OTHER_SITE_KEY, original),
    cause: /an A1-encrypted object under master key id '07000000', but StorageEncryption is disabled/,
  },
];

const md5 = (data: Uint8Array): string => createHash("md5").update(data).digest("hex");

/** Waits until Orthanc's log (fed by the bridge's log thread, asynchronously) matches; the log on failure. */
async function logLine(orthanc: OrthancInstance, pattern: RegExp, deadlineMs = 30_000): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const log = await orthanc.log();
    const line = log.split("\n").find((l) => pattern.test(l));
    if (line !== undefined) return line;
    if (Date.now() > deadline)
      throw new Error(
        `no log line matches ${pattern}; error lines:\n${log
          .split("\n")
          .filter((l) => l.startsWith("E"))
          .join("\n")
          .slice(-3000)}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function badObjectSuite(
  backendName: string,
  createBackend: (workDir: string) => Promise<RawBackend>,
): void {
  for (const encrypted of [true, false]) {
    const scenarios = encrypted ? ENCRYPTED_SCENARIOS : PLAINTEXT_SCENARIOS;
    describe(`bad objects on ${backendName}, encryption ${encrypted ? "on" : "off"}, through a real Orthanc`, () => {
      let orthanc: OrthancInstance;
      let backend: RawBackend;
      /** One instance per scenario, and a control one never touched. */
      const instances: Array<{ id: string; key: string; original: Buffer }> = [];
      let control: { id: string; original: Buffer };

      before(async () => {
        const workDir = await mkdtemp(join(tmpdir(), "ocs-bad-objects-"));
        await writeFile(join(workDir, "master.key"), OUR_KEY.toString("base64") + "\n", { mode: 0o600 });
        backend = await createBackend(workDir);
        orthanc = await OrthancInstance.start({
          workDir,
          config: {
            UnknownSopClassAccepted: true,
            ...backend.orthancConfig({
              StorageEncryption: { Enable: encrypted, MasterKey: [1, join(workDir, "master.key")] },
            }),
          },
        });
        const names = (await readdir(dicomDir)).filter((n) => n.endsWith(".dcm")).sort();
        // Files of at least 2 KB, so that every offset a scenario flips lies inside the ciphertext.
        const files: Buffer[] = [];
        for (const name of names) {
          const data = await readFile(join(dicomDir, name));
          if (data.length >= 2048) files.push(data);
        }
        assert.ok(files.length > scenarios.length, "one sample file per scenario, and a control");
        for (const original of files.slice(0, scenarios.length + 1)) {
          const { ID } = await orthanc.upload(original);
          const info = await orthanc.json<{ Uuid: string }>(`/instances/${ID}/attachments/dicom/info`);
          instances.push({ id: ID, key: `${info.Uuid}.dcm${encrypted ? ".enc" : ""}`, original });
        }
        const last = instances.pop();
        assert.ok(last !== undefined);
        control = last;
      });
      after(async () => {
        await orthanc?.destroy();
        await backend?.cleanup();
      });

      scenarios.forEach((scenario, index) => {
        it(`${scenario.name}: the read fails naming the object and the cause, nothing is served, nothing is lost`, async () => {
          const { id, key, original } = instances[index] as (typeof instances)[number];
          const stored = await backend.read(key);
          const planted = scenario.plant(stored, original);
          await backend.write(key, planted);

          for (const path of [`/instances/${id}/file`, `/instances/${id}/attachments/dicom/data`]) {
            const response = await orthanc.request("GET", path);
            const body = Buffer.from(await response.arrayBuffer());
            // Orthanc answers 500 for the storage area's CorruptedFile and StorageAreaPlugin codes.
            assert.equal(response.status, 500, `GET ${path}: HTTP ${response.status}, expected an error`);
            // Not one run of the file's or the planted object's bytes reaches the client.
            for (const source of [original, Buffer.from(planted)]) {
              if (source.length >= 600)
                assert.ok(!body.includes(source.subarray(500, 564)), `${path} leaked bytes`);
            }
          }
          // Orthanc's log names the object and the cause.
          const line = await logLine(orthanc, new RegExp(`${escaped(key)}.*${scenario.cause.source}`));
          assert.match(line, /^E/, `logged as an error: ${line}`);

          // Orthanc stays consistent: the control instance reads back intact, the index keeps the instance.
          const controlRead = await orthanc.request("GET", `/instances/${control.id}/file`);
          assert.equal(controlRead.status, 200);
          assert.equal(md5(new Uint8Array(await controlRead.arrayBuffer())), md5(control.original));
          assert.ok(
            (await orthanc.json<string[]>("/instances")).includes(id),
            "the instance is still indexed",
          );

          // Nothing is lost: with its object restored, the instance reads back byte-identical.
          await backend.write(key, stored);
          const restored = await orthanc.request("GET", `/instances/${id}/file`);
          assert.equal(restored.status, 200);
          assert.equal(md5(new Uint8Array(await restored.arrayBuffer())), md5(original));
        });
      });

      if (!encrypted) {
        it("an A1 object in place of plaintext is refused on the range read of /tags too", async () => {
          // Orthanc range-reads up to the pixel data when it knows where they start (orthanc-integration.md §3):
          // an uncompressed image.
          const original = await readFile(join(dicomDir, "US-palette-color-implicit-le.dcm"));
          const { ID: id } = await orthanc.upload(original);
          const info = await orthanc.json<{ Uuid: string }>(`/instances/${id}/attachments/dicom/info`);
          const key = `${info.Uuid}.dcm`;
          const offset = await orthanc.request("GET", `/instances/${id}/metadata/PixelDataOffset`);
          assert.equal(offset.status, 200, "Orthanc knows where the pixel data start");
          await offset.arrayBuffer();
          const stored = await backend.read(key);
          await backend.write(key, otherSite(1, OUR_KEY, original));
          const response = await orthanc.request("GET", `/instances/${id}/tags`);
          await response.arrayBuffer();
          assert.equal(response.status, 500, `GET /tags: HTTP ${response.status}`);
          await logLine(orthanc, new RegExp(`read range of attachment .*${escaped(key)}.*A1-encrypted`));
          await backend.write(key, stored);
          const tags = await orthanc.request("GET", `/instances/${id}/tags`);
          assert.equal(tags.status, 200);
          await tags.arrayBuffer();
        });
      }
    });
  }
}
