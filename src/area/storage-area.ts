// The four Orthanc storage operations on (uuid, content type), over one or several backends ("tiers"), each
// with its key layout, its store and its codec (plaintext or encrypted). New attachments go to the write
// target only; a read tries the tiers in the read order; a delete removes the attachment from every tier.
// Hybrid mode (spec §4.1–4.2) is the two-tier case: read the primary, then the secondary on any failure.
// Several named backends (docs/backends.md) are the general one; `backend(name)` reaches one directly, for
// callers that know where an attachment is (moves).
// On Orthanc >= 1.12.8 each attachment carries a record (attachment-record.ts) naming its backend and key:
// reads and removes given one go straight to that object, with one request and no probing.

import { Readable } from "node:stream";

import { slicePieces, type BytePieces } from "../byte-pieces.js";
import { StorageError, describeCause, isStorageError } from "../errors.js";
import { freePieces } from "../free-memory.js";
import type { HeldPlaintext, ObjectCodec } from "../crypto/codec.js";
import { ContentType, assertAttachment, isAttachment, type ParsedObjectKey } from "../layout/object-key.js";
import { nameFromDicom, type NamePattern } from "../layout/tag-names.js";
import type { Logger } from "../log.js";
import {
  storePieces,
  type ByteRange,
  type GetOptions,
  type ObjectBody,
  type ObjectStore,
  type OpenFileBody,
} from "../stores/object-store.js";
import { peekHead } from "../crypto/peek-head.js";
import { PlainCodec } from "../crypto/plain-codec.js";
import { decodeRecord, encodeRecord, recordFormatOf, type AttachmentRecord } from "./attachment-record.js";
import { decodeFileNow, openCheckedFile, type DirectFile, type DirectPlaintext } from "./direct-file-read.js";
import { v2RangeReaderFor, type V2RangeReader } from "./v2-range-read.js";

/** One storage of the area: a store, how attachments are named in it, and how their bytes are stored. */
export interface StorageTier {
  /**
   * Its name: in hybrid mode "object-storage" or "file-system", as the official plugin names them in logs
   * (spec §3.5); a single backend section is "object-storage"; with `Backends`, the name given there.
   */
  name: string;
  /**
   * The name records use for this backend (attachment-record.ts): with `Backends`, its name there (= `name`);
   * without, the backend section's name for the object storage ("AwsS3Storage"...), "FileSystem" for hybrid
   * mode's disk (docs/backends.md).
   */
  backend: string;
  store: ObjectStore;
  /** Plaintext or encrypted, with this tier's keys (hybrid mode: both tiers share one, spec §4.2). */
  codec: ObjectCodec;
  /** Keys under which an attachment may be found, the one to write first (spec §2.4). */
  keysOf(uuid: string, contentType: number): string[];
  /** The inverse, for tools that walk the store (verify, reencrypt): the attachment a key names, or null. */
  parseKey(key: string): ParsedObjectKey | null;
  /** The prefix every key of this tier starts with ("" or "RootPath/"), for listing its objects. */
  listPrefix: string;
  /**
   * With OrthancCloudStorage.ObjectNames: the key of an object named from its DICOM tags (RootPath and
   * extension added); absent where objects keep uuid names.
   */
  namedKey?: (name: string, contentType: number) => string;
  /** The inverse of namedKey: the name a key of this tier was made from, or undefined for no such key. */
  nameOfKey?: (key: string, contentType: number) => string | undefined;
}

export interface AttachmentRead {
  /** Bytes in `body`: the whole attachment, or the range asked for. */
  size: number;
  body: Readable;
  /**
   * The same bytes, when they are all in memory already (a small local file, or a decrypted plaintext): the
   * daemon then sends them in one write, and destroys `body` once they are sent (which gives a decrypted
   * read's memory reservation back).
   */
  bytes?: Uint8Array;
  /**
   * The same bytes as a list of pieces, when they are all in memory as a decryption produced them (not joined:
   * src/byte-pieces.ts): the daemon then sends them in one writev, as `bytes`.
   */
  pieces?: BytePieces;
  /**
   * With `bytes` or `pieces`: call once they are sent, to hand their memory back (to the store:
   * ObjectBody.recycle; or freed).
   */
  recycle?: () => void;
  /**
   * With ReadOptions.file, for a plaintext object of a local store: the open file holding the bytes
   * (ObjectBody.file), which the daemon may hand to the bridge instead of sending them; `body` closes it.
   */
  file?: OpenFileBody;
  /** Which tier served the read, and under which key. */
  tier: string;
  key: string;
}

/** Where a new attachment was written: the backend's name (StorageTier.name) and the key. */
export interface StoredAt {
  backend: string;
  key: string;
}

/** A read that looked at a tier: "found" there, or "missed" (not there, or failed) and went on. */
export type ProbeOutcome = "found" | "missed";

/** What the bridge says of an attachment being created (CreateFlag, protocol.ts). */
export interface CreateOptions {
  /** Orthanc >= 1.12.8 keeps a record with the attachment: create returns it. */
  record: boolean;
  /** The attachment is the DICOM instance being stored. */
  dicom?: boolean;
  /** Orthanc compressed it (StorageCompression). */
  compressed?: boolean;
}

/** How a read may be answered, and what Orthanc kept of the attachment. */
export interface ReadOptions extends GetOptions {
  /**
   * The attachment's record (its custom data, Orthanc >= 1.12.8): when non-empty, the attachment is read from
   * the object it names only.
   */
  record?: Uint8Array;
}

export interface StorageAreaOptions {
  /** Every tier, in the order reads try them. */
  tiers: readonly StorageTier[];
  /** The name of the tier new attachments are written to. */
  writeTo: string;
  logger: Logger;
  /** OrthancCloudStorage.ObjectNames: names new DICOM objects of a tier with `namedKey` (needs records). */
  objectNames?: NamePattern;
  /** Told of each tier a read without a known location looks at (the daemon counts them: metrics.ts). */
  onProbe?: (tier: string, outcome: ProbeOutcome) => void;
  /**
   * LocalDisk.PendingReadWait: how long a read found in no tier polls for the object before failing with
   * PENDING_ELSEWHERE (another node's write-behind spool may not have uploaded it yet). 0 or absent: NOT_FOUND
   * at once.
   */
  pendingReadWaitMs?: number;
}

/** One backend reached by name: its operations, without probing the others. */
export interface BackendAccess {
  readonly tier: StorageTier;
  /** Store an attachment in this backend, under its first key. */
  create(uuid: string, contentType: number, data: Uint8Array): Promise<StoredAt>;
  createStream(uuid: string, contentType: number, body: Readable, size: number): Promise<StoredAt>;
  /** The whole attachment, from `key` when given, else from its candidate keys. NOT_FOUND when absent. */
  readWhole(uuid: string, contentType: number, key?: string): Promise<AttachmentRead>;
  readRange(
    uuid: string,
    contentType: number,
    start: number,
    length: number,
    key?: string,
  ): Promise<AttachmentRead>;
  /** Delete `key`, or every candidate key; a missing object is not an error. */
  remove(uuid: string, contentType: number, key?: string): Promise<void>;
}

/** How much of a streamed DICOM file is looked at for its name: its header, before the pixel data. */
const NAME_HEAD_BYTES = 256 * 1024;

/** How often a read waiting for a pending object asks again. */
const PENDING_POLL_MS = 500;

/** A uuid Orthanc never generates (it makes random version-4 uuids): names the start-up probe. */
const PROBE_UUID = "00000000-0000-0000-0000-000000000000";

export class StorageArea {
  /** Every tier, in read order (hybrid mode: the primary, then the secondary). */
  readonly tiers: readonly StorageTier[];
  /** The tier new attachments go to. */
  readonly writeTarget: StorageTier;

  /** For each codec that writes v2: ranges of encrypted objects are read by their segments. */
  readonly #v2Ranges = new Map<ObjectCodec, V2RangeReader | undefined>();

  /** Reads adopted objects, which another system wrote in plaintext whatever the backend's encryption. */
  readonly #adoptedCodec = new PlainCodec();

  constructor(private readonly options: StorageAreaOptions) {
    this.tiers = options.tiers;
    for (const field of ["name", "backend"] as const) {
      const names = this.tiers.map((tier) => tier[field]);
      const repeated = names.find((name, index) => names.indexOf(name) !== index);
      if (repeated !== undefined) throw new Error(`storage area: two tiers of ${field} ${repeated}`);
    }
    const target = this.tiers.find((tier) => tier.name === options.writeTo);
    if (target === undefined) throw new Error(`storage area: no tier named ${options.writeTo} to write to`);
    this.writeTarget = target;
    for (const tier of this.tiers) {
      if (!this.#v2Ranges.has(tier.codec)) this.#v2Ranges.set(tier.codec, v2RangeReaderFor(tier.codec));
    }
  }

  /** The write target's codec: the format new attachments are stored in. */
  get codec(): ObjectCodec {
    return this.writeTarget.codec;
  }

  /** The names of the tiers, in read order. */
  get names(): string[] {
    return this.tiers.map((tier) => tier.name);
  }

  /** The tier called `name`; NOT_FOUND naming the known ones otherwise. */
  tier(name: string): StorageTier {
    const tier = this.tiers.find((candidate) => candidate.name === name);
    if (tier !== undefined) return tier;
    throw new StorageError(
      "NOT_FOUND",
      { operation: "find backend", subject: JSON.stringify(name) },
      `this configuration has no backend of that name; it has ${this.names.map((n) => JSON.stringify(n)).join(", ")}`,
    );
  }

  /** The backend called `name`, reached directly (no probing). Throws NOT_FOUND for an unknown name. */
  backend(name: string): BackendAccess {
    const tier = this.tier(name);
    return {
      tier,
      create: (uuid, contentType, data) => this.createIn(tier, uuid, contentType, data),
      createStream: (uuid, contentType, body, size) =>
        this.createStreamIn(tier, uuid, contentType, body, size),
      readWhole: (uuid, contentType, key) =>
        this.readFromTiers([tier], uuid, contentType, key, (t, k) =>
          this.readWholeFrom(t, k, uuid, contentType, t.codec, {}),
        ),
      readRange: (uuid, contentType, start, length, key) => {
        const end = checkedRangeEnd(uuid, start, length);
        return this.readFromTiers([tier], uuid, contentType, key, (t, k) =>
          this.readRangeFrom(t, k, uuid, contentType, start, end, t.codec, {}),
        );
      },
      remove: (uuid, contentType, key) => this.removeFrom([tier], uuid, contentType, key),
    };
  }

  /**
   * Ask every tier for an object that does not exist, so that wrong credentials, a missing bucket or an
   * unreachable endpoint stop start-up instead of the first upload. A GET rather than a HEAD: a refused
   * GET says why (e.g. SignatureDoesNotMatch), a refused HEAD has no body. Writes nothing. `tiers`: some
   * of them only (a write-behind tier may start with its backend down: src/daemon/start-check.ts).
   */
  async checkAccess(tiers: readonly StorageTier[] = this.tiers): Promise<void> {
    for (const tier of tiers) {
      const [key] = tier.keysOf(PROBE_UUID, 0);
      const object = await tier.store.get(key as string);
      object?.body.destroy();
    }
  }

  /** Release every tier's connections and handles. */
  async close(): Promise<void> {
    for (const tier of this.tiers) await tier.store.close();
  }

  /**
   * Store an attachment on the write target only (spec §4.2: no copy, no fallback). With `options.record`
   * (Orthanc >= 1.12.8), returns the record Orthanc keeps with it.
   */
  async create(
    uuid: string,
    contentType: number,
    data: Uint8Array,
    options?: CreateOptions,
  ): Promise<Buffer | undefined> {
    const tier = this.writeTarget;
    assertAttachment(uuid, contentType);
    const key = await this.keyForNew(tier, uuid, contentType, options, data, true);
    const stored = await this.createIn(tier, uuid, contentType, data, key);
    return options?.record === true ? this.newRecord(tier, stored.key) : undefined;
  }

  /**
   * Store an attachment of `size` bytes arriving as a stream, on the write target only; the object is
   * encoded and written as the bytes come, so a large attachment is never held whole.
   */
  async createStream(
    uuid: string,
    contentType: number,
    body: Readable,
    size: number,
    options?: CreateOptions,
  ): Promise<Buffer | undefined> {
    const tier = this.writeTarget;
    let key: string;
    try {
      assertAttachment(uuid, contentType);
      const named = this.wantsName(tier, contentType, options);
      const head = named ? await peekHead(body, Math.min(size, NAME_HEAD_BYTES)) : new Uint8Array(0);
      key = await this.keyForNew(tier, uuid, contentType, options, head, head.length === size);
    } catch (error) {
      body.destroy();
      throw error;
    }
    const stored = await this.createStreamIn(tier, uuid, contentType, body, size, key);
    return options?.record === true ? this.newRecord(tier, stored.key) : undefined;
  }

  /**
   * The whole attachment: with `options.record` (non-empty), from the object it names only; else from the
   * first tier in read order that has it. NOT_FOUND when none has.
   */
  readWhole(uuid: string, contentType: number, options: ReadOptions = {}): Promise<AttachmentRead> {
    const { record, ...get } = options;
    return this.readFrom(uuid, contentType, record, (tier, key, codec) =>
      this.readWholeFrom(tier, key, uuid, contentType, codec, get),
    );
  }

  /** `length` bytes from `start`. BAD_RANGE when the range does not lie within the attachment. */
  readRange(
    uuid: string,
    contentType: number,
    start: number,
    length: number,
    options: ReadOptions = {},
  ): Promise<AttachmentRead> {
    const end = checkedRangeEnd(uuid, start, length);
    const { record, ...get } = options;
    return this.readFrom(uuid, contentType, record, (tier, key, codec) =>
      this.readRangeFrom(tier, key, uuid, contentType, start, end, codec, get),
    );
  }

  /**
   * The direct path of a plaintext read (direct-file-read.ts): the attachment, or bytes [start, end) of it, as
   * an open local file, at once. Undefined whenever more than opening a file is needed (encryption, a store
   * of no local files, no file where its record or its first name says, a refused first bytes...): `readWhole`
   * or `readRange` then answers, and says why.
   */
  openFileNow(
    uuid: string,
    contentType: number,
    range: ByteRange | undefined,
    record: Uint8Array | undefined,
  ): DirectFile | undefined {
    const object = this.directObject(uuid, contentType, record);
    if (object === undefined || object.format !== "plaintext") return undefined;
    const { tier, key } = object;
    return openCheckedFile(tier.store, key, range, tier.codec, contentType);
  }

  /**
   * The direct path of an encrypted read (direct-file-read.ts): the attachment, or bytes [start, end) of it,
   * decrypted from a small local file, at once; its plaintext stays counted in the memory budget until
   * `release`. Undefined whenever more is needed (plaintext: openFileNow; a large file, no local file, the
   * budget full, a refused object...): `readWhole` or `readRange` then answers, and says why.
   */
  decodeNow(
    uuid: string,
    contentType: number,
    range: ByteRange | undefined,
    record: Uint8Array | undefined,
  ): DirectPlaintext | undefined {
    const object = this.directObject(uuid, contentType, record);
    if (object === undefined || object.format === "plaintext") return undefined;
    const { tier, key } = object;
    return decodeFileNow(tier.store, key, range, tier.codec, { uuid, contentType });
  }

  /**
   * The object a read goes to first, where the general read would answer from it when found: the one the
   * record names, or without one the first tier's first key. Its format is the tier's codec's; undefined
   * where the record says otherwise (adopted plaintext in an encrypted tier...) or cannot be read.
   */
  private directObject(
    uuid: string,
    contentType: number,
    record: Uint8Array | undefined,
  ): { tier: StorageTier; key: string; format: string } | undefined {
    if (!isAttachment(uuid, contentType)) return undefined;
    if (record === undefined || record.length === 0) {
      // The first tier a probing read looks at: found there, it is what that read would answer.
      const first = this.tiers[0] as StorageTier;
      return { tier: first, key: first.keysOf(uuid, contentType)[0] as string, format: first.codec.format };
    }
    let recorded: AttachmentRecord;
    try {
      recorded = decodeRecord(record, uuid);
    } catch {
      return undefined;
    }
    const tier = this.tiers.find((candidate) => candidate.backend === recorded.backend);
    // A plaintext record in an encrypted tier (adopted, or refused: codecFor) is the general read's.
    if (tier === undefined || (recorded.format === "plaintext") !== (tier.codec.format === "plaintext"))
      return undefined;
    return { tier, key: recorded.key, format: tier.codec.format };
  }

  /** Whether a new attachment is named from its DICOM tags: a DICOM instance as is, with a record kept. */
  private wantsName(tier: StorageTier, contentType: number, options: CreateOptions | undefined): boolean {
    return (
      this.options.objectNames !== undefined &&
      tier.namedKey !== undefined &&
      contentType === ContentType.Dicom &&
      options?.record === true &&
      options.dicom === true &&
      options.compressed !== true
    );
  }

  /**
   * The key of a new attachment: its name from its DICOM tags (`head`: its first bytes, `whole` when they are
   * all of it) with ObjectNames, else its uuid name, also when the tags give no name or the name is taken
   * (a HEAD request: another instance with the same tags, or the previous copy Orthanc replaces with
   * OverwriteInstances); both are logged.
   */
  private async keyForNew(
    tier: StorageTier,
    uuid: string,
    contentType: number,
    options: CreateOptions | undefined,
    head: Uint8Array,
    whole: boolean,
  ): Promise<string> {
    const uuidKey = tier.keysOf(uuid, contentType)[0] as string;
    const pattern = this.options.objectNames;
    if (pattern === undefined || tier.namedKey === undefined || !this.wantsName(tier, contentType, options)) {
      return uuidKey;
    }
    const name = nameFromDicom(pattern, head, whole);
    if (name === undefined) {
      this.options.logger.warn(
        `attachment ${uuid}: its DICOM tags give no name for ObjectNames "${pattern.text}" (no SOPInstanceUID, ` +
          `or not a DICOM file this plugin can parse); stored under its uuid name ${describeObject(tier, uuidKey)}`,
      );
      return uuidKey;
    }
    const key = tier.namedKey(name, contentType);
    if ((await tier.store.head(key)) !== null) {
      this.options.logger.warn(
        `attachment ${uuid}: ${describeObject(tier, key)} already exists (another instance with the same tags, ` +
          `or the copy Orthanc replaces); stored under its uuid name ${uuidKey} instead`,
      );
      return uuidKey;
    }
    return key;
  }

  /** The record of an object this area writes under `key` of `tier`, in the tier's format. */
  newRecord(tier: StorageTier, key: string): Buffer {
    const format = recordFormatOf(tier.codec.format);
    return encodeRecord({ backend: tier.backend, key, format, adopted: false, keepOnRemove: false });
  }

  /** OrthancCloudStorage.ObjectNames: the pattern new DICOM objects are named with; undefined for uuid names. */
  get objectNames(): NamePattern | undefined {
    return this.options.objectNames;
  }

  /** What an attachment's record says, or undefined when it has none (`record` empty or absent). */
  readRecord(uuid: string, record: Uint8Array | undefined): AttachmentRecord | undefined {
    return record === undefined || record.length === 0 ? undefined : decodeRecord(record, uuid);
  }

  /**
   * The tier a record names; a StorageError when this configuration has none of that name (e.g. a key of
   * `Backends` was renamed: records keep the name they were written with).
   */
  tierNamed(backend: string, uuid: string): StorageTier {
    const tier = this.tiers.find((candidate) => candidate.backend === backend);
    if (tier !== undefined) return tier;
    throw new StorageError(
      "NOT_FOUND",
      { operation: "find attachment", subject: uuid },
      `its custom data says it is in the backend "${backend}", which this configuration does not have ` +
        `(it has ${this.tiers.map((candidate) => `"${candidate.backend}"`).join(", ")}): restore that ` +
        "backend's section, or its name in OrthancCloudStorage.Backends (docs/backends.md)",
    );
  }

  /**
   * The codec of a recorded object in `tier`: the tier's, but for adopted plaintext objects (written by another
   * system). A plaintext record where the tier encrypts is refused, never served as if it were decrypted.
   */
  codecFor(record: AttachmentRecord, tier: StorageTier, uuid: string): ObjectCodec {
    const { codec } = tier;
    if (record.format === "plaintext" && codec.format !== "plaintext") {
      if (record.adopted) return this.#adoptedCodec;
      throw new StorageError(
        "UNSUPPORTED_FORMAT",
        { operation: "read attachment", subject: uuid },
        `its custom data says ${record.backend}/${record.key} is stored in plaintext, but StorageEncryption is ` +
          "enabled: it is not served as if it were decrypted. Disable encryption, or re-encrypt the object",
      );
    }
    return codec;
  }

  /**
   * Delete an attachment. With its record: the object it names (one request), and in an area of several
   * tiers its uuid names in the others too (what an interrupted move may have left: docs/backends.md).
   * Without one: from every tier and under every candidate key, since nothing says which tier holds it and
   * a delete must never leave it behind (one DELETE per tier and key). A missing object is not an error; any
   * real failure is reported after every tier was tried, so a partial delete never hides.
   */
  async remove(uuid: string, contentType: number, record?: Uint8Array): Promise<void> {
    assertAttachment(uuid, contentType);
    const recorded = this.readRecord(uuid, record);
    if (recorded === undefined) return this.removeFrom(this.tiers, uuid, contentType, undefined);
    if (recorded.keepOnRemove) {
      this.options.logger.info(
        `attachment ${uuid} removed from Orthanc; its adopted object ${recorded.backend}/${recorded.key} stays ` +
          "in place (adopted with KeepOnRemove)",
      );
      return;
    }
    const tier = this.tierNamed(recorded.backend, uuid);
    await tier.store.delete(recorded.key);
    if (this.tiers.length === 1 || recorded.adopted) return;
    await this.removeFrom(
      this.tiers.filter((other) => other !== tier),
      uuid,
      contentType,
      undefined,
    );
  }

  /**
   * A read: from the object its record names (one request), else by probing the tiers. A record pointing
   * at no object (a tool moved it without updating Orthanc's custom data) falls back to probing, with a
   * warning, so the attachment stays readable.
   */
  private async readFrom(
    uuid: string,
    contentType: number,
    record: Uint8Array | undefined,
    readFrom: (tier: StorageTier, key: string, codec: ObjectCodec) => Promise<AttachmentRead | null>,
  ): Promise<AttachmentRead> {
    assertAttachment(uuid, contentType);
    const recorded = this.readRecord(uuid, record);
    const probe = (): Promise<AttachmentRead> =>
      this.readFromTiers(this.tiers, uuid, contentType, undefined, (tier, key) =>
        readFrom(tier, key, tier.codec),
      );
    if (recorded === undefined) {
      if (this.options.objectNames === undefined || contentType !== ContentType.Dicom) return probe();
      return probe().catch((error: unknown) => {
        if (!isStorageError(error, "NOT_FOUND")) throw error;
        throw new StorageError(
          "NOT_FOUND",
          { operation: "read attachment", subject: uuid, cause: error },
          `${describeCause(error)}; ObjectNames is set, and objects named from DICOM tags are found only through ` +
            "the record Orthanc keeps with each attachment, but this one came without any: does Orthanc's " +
            "database keep custom data (docs/backends.md)?",
        );
      });
    }
    const tier = this.tierNamed(recorded.backend, uuid);
    const read = await readFrom(tier, recorded.key, this.codecFor(recorded, tier, uuid));
    if (read !== null) return read;
    this.options.logger.warn(
      `attachment ${uuid}: no object ${describeObject(tier, recorded.key)}, where its custom data points; ` +
        "looking for it under the names derived from its uuid",
    );
    return probe();
  }

  private async createIn(
    tier: StorageTier,
    uuid: string,
    contentType: number,
    data: Uint8Array,
    key = tier.keysOf(uuid, contentType)[0] as string,
  ): Promise<StoredAt> {
    assertAttachment(uuid, contentType);
    const stored = await tier.codec.encodePieces(data, describeObject(tier, key), { uuid, contentType });
    await storePieces(tier.store, key, stored);
    // An encrypted object's pieces are the codec's own memory, and no store keeps them once stored
    // (ObjectStore.put); the plaintext codec's one piece is the caller's.
    freePieces(stored, data);
    return { backend: tier.name, key };
  }

  private async createStreamIn(
    tier: StorageTier,
    uuid: string,
    contentType: number,
    body: Readable,
    size: number,
    key = tier.keysOf(uuid, contentType)[0] as string,
  ): Promise<StoredAt> {
    try {
      assertAttachment(uuid, contentType);
    } catch (error) {
      body.destroy();
      throw error;
    }
    await tier.codec.encodeStream(
      body,
      size,
      describeObject(tier, key),
      (stored, storedSize) => tier.store.putStream(key, stored, storedSize),
      { uuid, contentType },
    );
    return { backend: tier.name, key };
  }

  private async removeFrom(
    tiers: readonly StorageTier[],
    uuid: string,
    contentType: number,
    key: string | undefined,
  ): Promise<void> {
    assertAttachment(uuid, contentType);
    const failures: unknown[] = [];
    for (const tier of tiers) {
      for (const candidate of key === undefined ? tier.keysOf(uuid, contentType) : [key]) {
        try {
          await tier.store.delete(candidate);
        } catch (error) {
          failures.push(error);
        }
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) {
      throw new StorageError(
        "STORE_FAILED",
        { operation: "delete attachment", subject: uuid, cause: failures[0] },
        failures.map(describeCause).join("; "),
      );
    }
  }

  /**
   * readFromTiers, again and again for up to pendingReadWaitMs while the object is found nowhere: in a
   * cluster with write-behind, the node that acknowledged it may not have uploaded it yet.
   */
  private async readFromTiers(
    tiers: readonly StorageTier[],
    uuid: string,
    contentType: number,
    key: string | undefined,
    readFrom: (tier: StorageTier, key: string) => Promise<AttachmentRead | null>,
  ): Promise<AttachmentRead> {
    const waitMs = this.options.pendingReadWaitMs ?? 0;
    const deadline = performance.now() + waitMs;
    for (let polls = 0; ; polls++) {
      try {
        return await this.readFromTiersOnce(tiers, uuid, contentType, key, readFrom);
      } catch (error) {
        if (waitMs === 0 || !isStorageError(error, "NOT_FOUND")) throw error;
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new StorageError(
            "PENDING_ELSEWHERE",
            { operation: "read attachment", subject: uuid, cause: error },
            `still not found after ${waitMs / 1000} s and ${polls} more tries (LocalDisk.PendingReadWait): it may ` +
              "still wait in the write-behind spool of the node that stored it, and appear once that node uploads " +
              `it; if no node has a backlog, it is lost (${error.message})`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(PENDING_POLL_MS, left)));
      }
    }
  }

  private async readFromTiersOnce(
    tiers: readonly StorageTier[],
    uuid: string,
    contentType: number,
    key: string | undefined,
    readFrom: (tier: StorageTier, key: string) => Promise<AttachmentRead | null>,
  ): Promise<AttachmentRead> {
    assertAttachment(uuid, contentType);
    // Only reads that search (several tiers, no known key) are probes.
    const probe = tiers.length > 1 ? this.options.onProbe : undefined;
    const failures: unknown[] = [];
    for (const [index, tier] of tiers.entries()) {
      try {
        for (const candidate of key === undefined ? tier.keysOf(uuid, contentType) : [key]) {
          const read = await readFrom(tier, candidate);
          if (read !== null) {
            probe?.(tier.name, "found");
            return read;
          }
        }
        failures.push(notFoundIn(tier, uuid));
      } catch (error) {
        failures.push(error);
      }
      probe?.(tier.name, "missed");
      // spec §4.2: any failure of the primary sends the read to the secondary; say why in the log.
      const last = failures[failures.length - 1];
      if (index < tiers.length - 1 && !isStorageError(last, "NOT_FOUND")) {
        this.options.logger.warn(`${describeCause(last)}; trying the ${tiers[index + 1]?.name} storage`);
      }
    }
    throw mostTelling(failures, uuid, tiers);
  }

  private async readWholeFrom(
    tier: StorageTier,
    key: string,
    uuid: string,
    contentType: number,
    codec: ObjectCodec,
    options: GetOptions,
  ): Promise<AttachmentRead | null> {
    if (codec.format === "plaintext") {
      // Plaintext: the store's stream (or its file) goes straight through, no copy, once its first bytes
      // are checked.
      const object = await tier.store.get(key, undefined, options);
      if (object === null) return null;
      const subject = describeObject(tier, key);
      try {
        codec.plaintextSize(object.size, subject);
      } catch (error) {
        object.body.destroy();
        throw error;
      }
      await this.checkHead(codec, object, object.size, object.size, contentType, subject);
      const { body, bytes, recycle, file } = object;
      return { size: object.size, body, bytes, recycle, file, tier: tier.name, key };
    }
    const held = await this.decodeWhole(tier, key, uuid, contentType);
    if (held === null) return null;
    const { pieces, size, release } = held;
    return { size, ...heldBody(pieces, release, pieces), tier: tier.name, key };
  }

  private async readRangeFrom(
    tier: StorageTier,
    key: string,
    uuid: string,
    contentType: number,
    start: number,
    end: number,
    codec: ObjectCodec,
    options: GetOptions,
  ): Promise<AttachmentRead | null> {
    if (codec.format === "plaintext") {
      const object = await tier.store.get(key, { start, end }, options);
      if (object === null) return null;
      // Orthanc 1.10.1 range-reads from 0 only (/tags: up to the pixel data); a range further in shows no
      // first bytes to check, and costs no extra request.
      if (start === 0) {
        await this.checkHead(codec, object, end, object.size, contentType, describeObject(tier, key));
      }
      const { body, bytes, recycle, file } = object;
      return { size: end - start, body, bytes, recycle, file, tier: tier.name, key };
    }
    const v2Ranges = this.#v2Ranges.get(tier.codec);
    if (v2Ranges !== undefined && end > start) {
      const subject = describeObject(tier, key);
      const read = await v2Ranges.read(tier.store, key, subject, { uuid, contentType }, start, end);
      if (read === null) return null;
      if (read !== "whole") {
        return { size: end - start, ...heldBody(read.pieces, read.release), tier: tier.name, key };
      }
    }
    // An A1 object cannot be read in part: decrypt it whole, then cut the range out.
    const held = await this.decodeWhole(tier, key, uuid, contentType);
    if (held === null) return null;
    const { pieces, size, release } = held;
    if (end > size) {
      release();
      throw new StorageError(
        "BAD_RANGE",
        { operation: "read range", subject: describeObject(tier, key) },
        `bytes [${start}, ${end}) asked of an attachment of ${size} bytes`,
      );
    }
    const range = slicePieces(pieces, start, end);
    return { size: end - start, ...heldBody(range, release, pieces), tier: tier.name, key };
  }

  /**
   * Let the codec see the first bytes of an object served as is (of `available` bytes in `body`), before
   * anything is sent; a refused body is destroyed so its file or connection is released.
   */
  private async checkHead(
    codec: ObjectCodec,
    { body, bytes, file }: ObjectBody,
    available: number,
    storedSize: number,
    contentType: number,
    subject: string,
  ): Promise<void> {
    if (codec.headBytes === 0) return;
    try {
      const count = Math.min(codec.headBytes, available);
      const head =
        bytes !== undefined
          ? bytes.subarray(0, count)
          : file !== undefined
            ? file.peek(count)
            : await peekHead(body, count);
      codec.checkHead(head, storedSize, contentType, subject);
    } catch (error) {
      body.destroy();
      if (isStorageError(error)) throw error;
      throw new StorageError(
        "STORE_FAILED",
        { operation: "read", subject, cause: error },
        describeCause(error),
      );
    }
  }

  /**
   * Fetch and authenticate a whole encoded object; null when it does not exist. Its plaintext stays counted
   * in the memory budget until `release`.
   */
  private async decodeWhole(
    tier: StorageTier,
    key: string,
    uuid: string,
    contentType: number,
  ): Promise<HeldPlaintext | null> {
    const object = await tier.store.get(key);
    if (object === null) return null;
    const subject = describeObject(tier, key);
    if (object.bytes === undefined) {
      return tier.codec.decodeHeld(object.body, object.size, subject, { uuid, contentType });
    }
    object.body.destroy(); // its bytes are taken whole instead
    let held: HeldPlaintext | undefined;
    try {
      held = await tier.codec.decodeHeld(object.bytes, object.size, subject, { uuid, contentType });
      return held;
    } finally {
      // Refused, or decoded into memory of its own: the stored bytes can go back to the store. A codec that
      // returned its input as is (plaintext) keeps them.
      if (held?.pieces[0]?.buffer !== object.bytes.buffer) object.recycle?.();
    }
  }
}

/**
 * The plaintext's pieces, and as a stream that gives its memory reservation back once read to the end or
 * destroyed (also when the plaintext was sent from `pieces`). With `decrypted`, the memory the codec
 * decrypted into, referenced nowhere else: freed once the answer was sent (free-memory.ts).
 */
function heldBody(
  pieces: BytePieces,
  release: () => void,
  decrypted?: BytePieces,
): { body: Readable; pieces: BytePieces; recycle?: () => void } {
  const body = Readable.from(pieces);
  body.once("close", release);
  return decrypted === undefined
    ? { body, pieces }
    : {
        body,
        pieces,
        recycle: () => freePieces(decrypted),
      };
}

/** The end of a range read's bytes; BAD_RANGE when start or length is not a non-negative integer. */
function checkedRangeEnd(uuid: string, start: number, length: number): number {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0) {
    throw new StorageError(
      "BAD_RANGE",
      { operation: "read range of attachment", subject: uuid },
      `start ${start} and length ${length} must be non-negative integers`,
    );
  }
  return start + length;
}

function describeObject(tier: StorageTier, key: string): string {
  return `${tier.store.location}/${key}`;
}

function notFoundIn(tier: StorageTier, uuid: string): StorageError {
  return new StorageError(
    "NOT_FOUND",
    { operation: "read attachment", subject: uuid },
    `not in the ${tier.name} storage`,
  );
}

/**
 * The error to return when every tier failed: NOT_FOUND only when no tier had the object; otherwise the
 * first real failure (a corrupted object on the primary matters more than its absence on the secondary).
 */
function mostTelling(failures: unknown[], uuid: string, tiers: readonly StorageTier[]): unknown {
  const real = failures.find((error) => !isStorageError(error, "NOT_FOUND"));
  if (real !== undefined) return real;
  const places = tiers.map((tier) => `the ${tier.name} storage (${tier.store.location})`).join(" nor in ");
  return new StorageError(
    "NOT_FOUND",
    { operation: "read attachment", subject: uuid },
    `no object in ${places}`,
  );
}
