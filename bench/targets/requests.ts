// Target 3, requests per read: how many requests each cloud server receives for one read of an attachment
// through Orthanc: a whole read (GET /instances/{id}/file: the bridge's readWhole) and a range read
// (GET /instances/{id}/tags: readRange of the bytes before the pixel data). Counted at the server side:
// RGW's access log, and a recording proxy in front of Azurite and the GCS emulator. The official plugin
// needs 2 for each (a LIST, GetProperties or metadata request for the size, then the GET); we need 1.
// Reads of encrypted attachments are counted too: A1 (whole reads only: A1 has no range reads) and v2
// (issue 18: whole and range reads). And the ingest: the requests each uploaded instance costs, with A1
// (the instance and its `.dcm.head` header copy, which Orthanc writes when its storage area cannot read
// ranges) and with v2 (one object per instance).

import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { OrthancInstance } from "../../test-support/orthanc.js";
import { CLOUD_BACKENDS, type CloudBackend, type RequestCount } from "../cloud-backends.js";
import { sampleDicomFiles, type SampleFile } from "../measure.js";
import type { BenchTarget, TargetResult } from "../target.js";

const GOAL = 1;
/** Instances read per round and kind of read: enough to see a stray request, few enough to be quick. */
const READS_PER_ROUND = 6;

/** How the attachments are stored: plaintext, or encrypted in one of the two formats. */
type StoredFormat = "plain" | "A1" | "v2";
const FORMATS: readonly StoredFormat[] = ["plain", "A1", "v2"];
/**
 * Requests per ingested instance: one write each; A1 two (Orthanc adds the `.dcm.head` copy, as it does
 * for every storage area without range reads). Plaintext is counted for reference, with v2's goal.
 */
const INGEST_GOALS: Readonly<Record<StoredFormat, number>> = { plain: 1, A1: 2, v2: 1 };

interface ReadKind {
  name: string;
  format: StoredFormat;
  /** The Orthanc route that makes the read. */
  path(id: string): string;
  /** Whether the storage request must ask for a byte range (checked: else this kind was not measured). */
  ranged: boolean;
}

const READ_KINDS: readonly ReadKind[] = [
  { name: "whole read", format: "plain", ranged: false, path: (id) => `/instances/${id}/file` },
  { name: "range read", format: "plain", ranged: true, path: (id) => `/instances/${id}/tags` },
  { name: "whole read, A1-encrypted", format: "A1", ranged: false, path: (id) => `/instances/${id}/file` },
  { name: "whole read, v2-encrypted", format: "v2", ranged: false, path: (id) => `/instances/${id}/file` },
  { name: "range read, v2-encrypted", format: "v2", ranged: true, path: (id) => `/instances/${id}/tags` },
];

export const requests: BenchTarget = {
  name: "requests",
  async run({ rounds, log }) {
    const files = await sampleDicomFiles();
    const results: TargetResult[] = [];
    for (const starter of CLOUD_BACKENDS) {
      const backend = await starter.start({ counted: true });
      try {
        for (const format of FORMATS) {
          const kinds = READ_KINDS.filter((kind) => kind.format === format);
          const { ingest, counts } = await countReads(backend, files, kinds, rounds, format);
          const ingestRequests = ingest.map((count) => count.requests);
          const ingestWrites = ingest.map((count) => count.writes);
          log(
            `${backend.name}, ingest, ${format === "plain" ? "plaintext" : `${format}-encrypted`}: ` +
              `${ingest.length} instances, requests per instance min ${Math.min(...ingestRequests)} ` +
              `max ${Math.max(...ingestRequests)} mean ${mean(ingestRequests).toFixed(2)} ` +
              `(of which writes: mean ${mean(ingestWrites).toFixed(2)})`,
          );
          results.push({
            label: `requests: ingest per instance, ${format}, ${backend.name} (worst instance)`,
            measured: Math.max(...ingestRequests),
            goal: INGEST_GOALS[format],
            higherIsBetter: false,
            unit: "requests",
          });
          for (const [k, kind] of kinds.entries()) {
            const perRead = counts[k] as number[];
            const worst = Math.max(...perRead);
            log(
              `${backend.name}, ${kind.name}: ${perRead.length} reads, requests per read ` +
                `min ${Math.min(...perRead)} max ${worst} mean ${mean(perRead).toFixed(2)}`,
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

/**
 * The requests the server received for each uploaded instance, and for each read, per kind of read, over
 * every round.
 */
async function countReads(
  backend: CloudBackend,
  files: SampleFile[],
  kinds: readonly ReadKind[],
  rounds: number,
  format: StoredFormat,
): Promise<{ ingest: RequestCount[]; counts: number[][] }> {
  // The key file lives in Orthanc's work folder, removed with it.
  const workDir = await mkdtemp(join(tmpdir(), "ocs-bench-requests-"));
  const orthanc = await OrthancInstance.start({
    workDir,
    config: await orthancConfig(backend, format, workDir),
  });
  try {
    const { ids, ingest } = await instancesWithPixelData(orthanc, files, backend);
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
    return { ingest, counts };
  } finally {
    await orthanc.destroy();
  }
}

async function orthancConfig(
  backend: CloudBackend,
  format: StoredFormat,
  workDir: string,
): Promise<Record<string, unknown>> {
  if (format === "plain") return backend.orthancConfig({ StorageEncryption: { Enable: false } });
  const keyFile = join(workDir, "master.key");
  await writeFile(keyFile, Buffer.alloc(32, 9).toString("base64"), { mode: 0o600 });
  return backend.orthancConfig({ StorageEncryption: { MasterKey: [1, keyFile], Format: format } });
}

/**
 * Uploads the files, counting the requests each upload costs at the server, and returns the ids of those
 * Orthanc knows the pixel-data offset of: only for those does /tags read a range (the bytes before the
 * pixel data) instead of the whole file.
 */
async function instancesWithPixelData(
  orthanc: OrthancInstance,
  files: SampleFile[],
  backend: CloudBackend,
): Promise<{ ids: string[]; ingest: RequestCount[] }> {
  const ids: string[] = [];
  const ingest: RequestCount[] = [];
  for (const file of files) {
    const counted = await backend.startCounting();
    const { ID } = await orthanc.upload(file.bytes);
    ingest.push(await counted());
    const offset = await orthanc.request("GET", `/instances/${ID}/metadata/PixelDataOffset`);
    await offset.arrayBuffer();
    if (offset.ok) ids.push(ID);
  }
  if (ids.length < READS_PER_ROUND)
    throw new Error(`only ${ids.length} sample files have pixel data; ${READS_PER_ROUND} are needed`);
  return { ids, ingest };
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
