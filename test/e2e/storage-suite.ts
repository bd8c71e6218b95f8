// The end-to-end suite every backend runs: a real Orthanc (Debian package) with our bridge and daemon,
// in each layout, with and without encryption, on one of the Orthanc versions of orthanc-releases.ts.
// Object names are checked with an independent view of the backend (the folder itself, or another S3
// client), never through our own driver.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import type { StorageStructure } from "../../src/config/types.js";
import { hasCustomData } from "../../src/area/orthanc-features.js";
import { decryptA1 } from "../../src/crypto/a1-cipher.js";
import { KeyRing } from "../../src/crypto/key-ring.js";
import { objectKey } from "../../src/layout/object-key.js";
import type { BucketFixture } from "../../test-support/bucket-fixture.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import {
  HOST_ORTHANC,
  releaseOptions,
  releaseTitle,
  type OrthancRelease,
} from "../../test-support/orthanc-releases.js";
import { dicomDir } from "../../test-support/paths.js";

/** Files Orthanc 1.10.1 cannot render (README of the fixtures): /preview answers 415 for them. */
const NO_PREVIEW = new Set([
  "ts-1.2.4.90-jpeg2000-lossless-NM.dcm",
  "ts-1.2.4.91-jpeg2000-lossy-CT-private-tags.dcm",
  "multiframe-enhanced-MR-no-pixel-data.dcm",
  "RTSTRUCT-implicit-le.dcm",
  "PR-gsps-utf8.dcm",
  "SR-basic-text-latin2.dcm",
  "encapsulated-pdf.dcm",
  "encapsulated-stl-M3D.dcm",
  "DX-utf8-private-tags-no-pixel-data.dcm",
]);

/** Orthanc's content types → the one the plugin receives: user types arrive as 0 (orthanc-integration.md §2). */
const PLUGIN_TYPES: Record<number, number> = { 1: 1, 2: 2, 3: 3 };

const KEY = Buffer.alloc(32, 0x5a).toString("base64");
const md5 = (data: Uint8Array): string => createHash("md5").update(data).digest("hex");

export interface Variant {
  structure: StorageStructure;
  encrypted: boolean;
  rootPath: string;
}

/**
 * A backend as the suite sees it: its configuration section (given the options common to every section),
 * and an independent view of its objects. A bucket fixture of test-support/ is one.
 */
export type TestBackend = Pick<
  BucketFixture<unknown, unknown>,
  "orthancConfig" | "listKeys" | "read" | "cleanup"
>;

const VARIANTS: Variant[] = [
  { structure: "flat", encrypted: true, rootPath: "" },
  { structure: "flat", encrypted: false, rootPath: "orthanc/data" },
  { structure: "legacy", encrypted: true, rootPath: "" },
  { structure: "legacy", encrypted: false, rootPath: "" },
];

export function orthancStorageSuite(
  backendName: string,
  createBackend: (workDir: string) => Promise<TestBackend>,
  release: OrthancRelease = HOST_ORTHANC,
): void {
  for (const variant of VARIANTS) {
    const title = `${variant.structure}, RootPath "${variant.rootPath}", encryption ${variant.encrypted ? "on" : "off"}`;
    describe(`${releaseTitle(release)} on ${backendName} (${title})`, () => {
      let orthanc: OrthancInstance;
      let backend: TestBackend;
      const listObjects = (): Promise<string[]> => backend.listKeys();
      const files = new Map<string, Buffer>();
      const ids = new Map<string, string>();
      const studies = new Map<string, string>();

      before(async () => {
        for (const name of (await readdir(dicomDir)).filter((n) => n.endsWith(".dcm")).sort()) {
          files.set(name, await readFile(join(dicomDir, name)));
        }
        const workDir = await mkdtemp(join(tmpdir(), "ocs-e2e-"));
        await writeFile(join(workDir, "master.key"), KEY + "\n", { mode: 0o600 });
        backend = await createBackend(workDir);
        orthanc = await OrthancInstance.start({
          workDir,
          ...(await releaseOptions(release)),
          config: {
            UserContentType: { note: [1024, "text/plain"], big: [1025, "application/octet-stream"] },
            UnknownSopClassAccepted: true,
            ...backend.orthancConfig({
              StorageStructure: variant.structure,
              RootPath: variant.rootPath,
              StorageEncryption: { Enable: variant.encrypted, MasterKey: [1, join(workDir, "master.key")] },
            }),
          },
        });
      });
      after(async () => {
        await orthanc?.destroy();
        await backend?.cleanup();
      });

      it(`runs Orthanc ${release.version}`, async () => {
        assert.equal((await orthanc.json<{ Version: string }>("/system")).Version, release.version);
        // The bridge, built once against Orthanc 1.13.0's header, says in the log which Orthanc it runs in,
        // and registers the storage area with custom data only where Orthanc has it (>= 1.12.8).
        const log = await orthanc.log();
        assert.match(log, new RegExp(`in Orthanc ${release.version.replaceAll(".", "\\.")} `));
        assert.match(
          log,
          new RegExp(`the daemon is ready: .*custom data ${hasCustomData(release.version) ? "on" : "off"}`),
        );
      });

      it("stores every sample file sent by REST, and gives each back byte-identical", async () => {
        for (const [name, data] of files) {
          const answer = await orthanc.upload(data);
          assert.equal(answer.Status, "Success", name);
          ids.set(name, answer.ID);
          studies.set(name, answer.ParentStudy);
        }
        for (const [name, data] of files) {
          const response = await orthanc.request("GET", `/instances/${ids.get(name)}/file`);
          assert.equal(response.status, 200, name);
          assert.equal(md5(new Uint8Array(await response.arrayBuffer())), md5(data), name);
        }
      });

      it("names every object exactly as the official plugin would (spec §2)", async () => {
        const expected: string[] = [];
        for (const id of ids.values()) {
          for (const name of await orthanc.json<string[]>(`/instances/${id}/attachments`)) {
            const info = await orthanc.json<{ Uuid: string; ContentType: number }>(
              `/instances/${id}/attachments/${name}/info`,
            );
            const layout = {
              structure: variant.structure,
              rootPath: variant.rootPath,
              encrypted: variant.encrypted,
            };
            expected.push(objectKey(layout, info.Uuid, PLUGIN_TYPES[info.ContentType] ?? 0));
          }
        }
        assert.deepEqual(await listObjects(), [...new Set(expected)].sort());
        const headers = expected.filter((key) => key.endsWith(".dcm.head.enc"));
        // Orthanc >= 1.12.8's storage area with custom data always has range reads (docs/backends.md).
        if (variant.encrypted && variant.structure === "flat" && !hasCustomData(release.version)) {
          assert.ok(
            headers.length > 0,
            "without range reads Orthanc stores DicomUntilPixelData headers (spec §5.1)",
          );
        } else {
          assert.equal(headers.length, 0);
        }
      });

      it(`stores objects ${variant.encrypted ? "encrypted in the A1 format" : "as plaintext"}`, async () => {
        const [name, data] = [...files].find(([n]) => n === "ts-1.2.4.50-jpeg-baseline-US.dcm") as [
          string,
          Buffer,
        ];
        const info = await orthanc.json<{ Uuid: string }>(
          `/instances/${ids.get(name)}/attachments/dicom/info`,
        );
        const layout = {
          structure: variant.structure,
          rootPath: variant.rootPath,
          encrypted: variant.encrypted,
        };
        const stored = await backend.read(objectKey(layout, info.Uuid, 1));
        if (variant.encrypted) {
          const ring = new KeyRing({ id: 1, key: Buffer.from(KEY, "base64") });
          assert.equal(stored.subarray(0, 2).toString(), "A1");
          assert.deepEqual(Buffer.from(decryptA1(stored, ring, "stored object")), data);
        } else {
          assert.deepEqual(stored, data);
        }
      });

      it("serves /tags, /preview and a study archive from the stored objects", async () => {
        for (const [name, id] of ids) {
          const tags = await orthanc.request("GET", `/instances/${id}/tags?simplify`);
          assert.equal(tags.status, 200, `${name} /tags`);
          assert.ok(Object.keys((await tags.json()) as object).length > 0);
          const preview = await orthanc.request("GET", `/instances/${id}/preview`);
          await preview.arrayBuffer();
          assert.equal(preview.status, NO_PREVIEW.has(name) ? 415 : 200, `${name} /preview`);
        }
        const archive = await orthanc.request(
          "GET",
          `/studies/${studies.get("ts-1.2.5-rle-NM.dcm")}/archive`,
        );
        assert.equal(archive.status, 200);
        const zip = Buffer.from(await archive.arrayBuffer());
        assert.equal(zip.subarray(0, 2).toString(), "PK");
      });

      it("stores a user-defined attachment as .unk and reads it back", async () => {
        const id = ids.get("PR-gsps-utf8.dcm") as string;
        const note = Buffer.from("a user-defined attachment, stored as content type 0");
        const put = await orthanc.request("PUT", `/instances/${id}/attachments/note`, note);
        assert.equal(put.status, 200, await put.text());
        const back = await orthanc.request("GET", `/instances/${id}/attachments/note/data`);
        assert.deepEqual(Buffer.from(await back.arrayBuffer()), note);
        const info = await orthanc.json<{ Uuid: string }>(`/instances/${id}/attachments/note/info`);
        const layout = {
          structure: variant.structure,
          rootPath: variant.rootPath,
          encrypted: variant.encrypted,
        };
        const key = objectKey(layout, info.Uuid, 0);
        if (variant.structure === "flat") assert.match(key, variant.encrypted ? /\.unk\.enc$/ : /\.unk$/);
        assert.ok((await listObjects()).includes(key));
      });

      if (variant.encrypted && variant.structure === "flat") {
        it("streams an attachment of 12 MiB through the bridge and the encryption, and reads it back", async () => {
          // Above 8 MiB the daemon encrypts and writes as the bytes come off the bridge's socket.
          const id = ids.get("PR-gsps-utf8.dcm") as string;
          const big = randomBytes(12 * 1024 * 1024);
          const put = await orthanc.request("PUT", `/instances/${id}/attachments/big`, big);
          assert.equal(put.status, 200, await put.text());
          const back = await orthanc.request("GET", `/instances/${id}/attachments/big/data`);
          assert.ok(Buffer.from(await back.arrayBuffer()).equals(big));
          const info = await orthanc.json<{ Uuid: string }>(`/instances/${id}/attachments/big/info`);
          const key = objectKey(
            { structure: variant.structure, rootPath: variant.rootPath, encrypted: true },
            info.Uuid,
            0,
          );
          const stored = await backend.read(key);
          assert.equal(stored.length, big.length + 86);
          assert.equal(stored.subarray(0, 2).toString(), "A1");
        });
      }

      it("answers a duplicate upload with AlreadyStored and leaves no extra object", async () => {
        const before = await listObjects();
        const answer = await orthanc.upload(files.get("ts-1.2.5-rle-NM.dcm") as Buffer);
        assert.equal(answer.Status, "AlreadyStored");
        assert.deepEqual(await listObjects(), before);
      });

      it("receives every sample file by DICOM C-STORE (dcmtk), and serves each back", async () => {
        for (const id of ids.values())
          assert.equal((await orthanc.request("DELETE", `/instances/${id}`)).status, 200);
        assert.deepEqual(await listObjects(), []);
        // dcmsend proposes each file's own transfer syntax; it needs a file meta header, which the two raw
        // data sets of the fixtures lack: storescu sends those.
        const raw = ["PT-private-tags-implicit-le.dcm", "ts-1.2-implicit-le-MR.dcm"];
        const withHeader = [...files.keys()].filter((name) => !raw.includes(name));
        const target = ["-aec", "ORTHANC", "127.0.0.1", String(orthanc.dicomPort)];
        await promisify(execFile)("dcmsend", [
          "-nh",
          ...target,
          ...withHeader.map((name) => join(dicomDir, name)),
        ]);
        await promisify(execFile)("storescu", [...target, ...raw.map((name) => join(dicomDir, name))]);
        const instances = await orthanc.json<string[]>("/instances");
        assert.deepEqual(
          [...instances].sort(),
          [...ids.values()].sort(),
          "the same instances are back, by DICOM this time",
        );
        for (const [name, id] of ids) {
          const response = await orthanc.request("GET", `/instances/${id}/file`);
          assert.equal(response.status, 200, name);
          const file = Buffer.from(await response.arrayBuffer());
          assert.equal(file.subarray(128, 132).toString(), "DICM", name);
        }
        assert.ok((await listObjects()).length >= files.size);
      });

      it("deletes every object of a deleted instance, and answers 404 for it afterwards", async () => {
        for (const id of ids.values()) {
          assert.equal((await orthanc.request("DELETE", `/instances/${id}`)).status, 200);
        }
        assert.deepEqual(await orthanc.json<string[]>("/instances"), []);
        assert.deepEqual(await listObjects(), []);
        const gone = await orthanc.request("GET", `/instances/${ids.get("PR-gsps-utf8.dcm")}/file`);
        assert.equal(gone.status, 404);
      });
    });
  }
}
