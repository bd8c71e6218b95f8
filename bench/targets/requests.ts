// Target 3, requests per read: how many requests each cloud server receives for one read of an attachment
// through Orthanc: a whole read (GET /instances/{id}/file: the bridge's readWhole) and a range read
// (GET /instances/{id}/tags: readRange of the bytes before the pixel data). Counted at the server side:
// RGW's access log, and a recording proxy in front of Azurite and the GCS emulator. The official plugin
// needs 2 for each (a LIST, GetProperties or metadata request for the size, then the GET); we need 1.
// Reads of A1-encrypted attachments are counted too (whole reads only: A1 has no range reads).

import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { OrthancInstance } from "../../test-support/orthanc.js";
import { CLOUD_BACKENDS, type CloudBackend } from "../cloud-backends.js";
import { sampleDicomFiles, type SampleFile } from "../measure.js";
import type { BenchTarget, TargetResult } from "../target.js";

const GOAL = 1;
/** Instances read per round and kind of read: enough to see a stray request, few enough to be quick. */
const READS_PER_ROUND = 6;

interface ReadKind {
  name: string;
  encrypted: boolean;
  /** The Orthanc route that makes the read. */
  path(id: string): string;
  /** Whether the storage request must ask for a byte range (checked: else this kind was not measured). */
  ranged: boolean;
}

const READ_KINDS: readonly ReadKind[] = [
  { name: "whole read", encrypted: false, ranged: false, path: (id) => `/instances/${id}/file` },
  { name: "range read", encrypted: false, ranged: true, path: (id) => `/instances/${id}/tags` },
  { name: "whole read, A1-encrypted", encrypted: true, ranged: false, path: (id) => `/instances/${id}/file` },
];

export const requests: BenchTarget = {
  name: "requests",
  async run({ rounds, log }) {
    const files = await sampleDicomFiles();
    const results: TargetResult[] = [];
    for (const starter of CLOUD_BACKENDS) {
      const backend = await starter.start({ counted: true });
      try {
        for (const encrypted of [false, true]) {
          const kinds = READ_KINDS.filter((kind) => kind.encrypted === encrypted);
          const counts = await countReads(backend, files, kinds, rounds, encrypted);
          for (const [k, kind] of kinds.entries()) {
            const perRead = counts[k] as number[];
            const worst = Math.max(...perRead);
            log(
              `${backend.name}, ${kind.name}: ${perRead.length} reads, requests per read ` +
                `min ${Math.min(...perRead)} max ${worst} mean ${(perRead.reduce((a, b) => a + b, 0) / perRead.length).toFixed(2)}`,
            );
            results.push({
              label: `requests: ${kind.name}, ${backend.name} (worst read)`,
              measured: worst,
              goal: GOAL,
              higherIsBetter: false,
              unit: "requests",
            });
          }
        }
      } finally {
        await backend.stop();
      }
    }
    return results;
  },
};

/** Requests the server received for each read, per kind of read, over every round. */
async function countReads(
  backend: CloudBackend,
  files: SampleFile[],
  kinds: readonly ReadKind[],
  rounds: number,
  encrypted: boolean,
): Promise<number[][]> {
  // The key file lives in Orthanc's work folder, removed with it.
  const workDir = await mkdtemp(join(tmpdir(), "ocs-bench-requests-"));
  const orthanc = await OrthancInstance.start({
    workDir,
    config: await orthancConfig(backend, encrypted, workDir),
  });
  try {
    const ids = await instancesWithPixelData(orthanc, files);
    const counts = kinds.map((): number[] => []);
    for (let round = 0; round < rounds; round++) {
      for (const id of ids.slice(0, READS_PER_ROUND)) {
        for (const [k, kind] of kinds.entries()) {
          const counted = await backend.startCounting();
          const response = await orthanc.request("GET", kind.path(id));
          await response.arrayBuffer();
          if (!response.ok) throw new Error(`${backend.name}: GET ${kind.path(id)}: HTTP ${response.status}`);
          const { requests, ranged } = await counted();
          const read = `${backend.name}: GET ${kind.path(id)}`;
          if (requests === 0)
            throw new Error(
              `${read} reached no storage request: Orthanc served it from a cache, so nothing was measured`,
            );
          if (kind.ranged ? ranged === 0 : ranged > 0)
            throw new Error(
              `${read} made ${ranged} ranged request(s) of ${requests}: it is not the ${kind.name} it should measure`,
            );
          counts[k]?.push(requests);
        }
      }
    }
    return counts;
  } finally {
    await orthanc.destroy();
  }
}

async function orthancConfig(
  backend: CloudBackend,
  encrypted: boolean,
  workDir: string,
): Promise<Record<string, unknown>> {
  if (!encrypted) return backend.orthancConfig({ StorageEncryption: { Enable: false } });
  const keyFile = join(workDir, "master.key");
  await writeFile(keyFile, Buffer.alloc(32, 9).toString("base64"), { mode: 0o600 });
  return backend.orthancConfig({ StorageEncryption: { MasterKey: [1, keyFile] } });
}

/**
 * Uploads the files and returns the ids of those Orthanc knows the pixel-data offset of: only for those
 * does /tags read a range (the bytes before the pixel data) instead of the whole file.
 */
async function instancesWithPixelData(orthanc: OrthancInstance, files: SampleFile[]): Promise<string[]> {
  const ids: string[] = [];
  for (const file of files) {
    const { ID } = await orthanc.upload(file.bytes);
    const offset = await orthanc.request("GET", `/instances/${ID}/metadata/PixelDataOffset`);
    await offset.arrayBuffer();
    if (offset.ok) ids.push(ID);
  }
  if (ids.length < READS_PER_ROUND)
    throw new Error(`only ${ids.length} sample files have pixel data; ${READS_PER_ROUND} are needed`);
  return ids;
}
