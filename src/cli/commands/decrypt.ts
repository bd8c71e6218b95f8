// `decrypt --key ID:FILE [--key ID:FILE ...] [--uuid UUID] [--content-type N] IN OUT`: an A1 or v2 object
// back into its plaintext, the format told by its first bytes. A v2 object is bound to its attachment's
// uuid (docs/encryption-format-v2.md, "Keys"): taken from --uuid, else from the file's name when it is the
// object's name in the flat layout (uuid.dcm.enc). The output file only appears once the object is
// authenticated: a failure never leaves partial plaintext behind.

import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { basename } from "node:path";
import { Readable } from "node:stream";

import { decryptA1Stream } from "../../crypto/a1-cipher.js";
import type { AttachmentIdentity } from "../../crypto/codec.js";
import { decryptV2Stream } from "../../crypto/v2-cipher.js";
import { V2_MAGIC, hasV2Magic } from "../../crypto/v2-format.js";
import { parseObjectKey } from "../../layout/object-key.js";
import { writeAtomically } from "../atomic-output.js";
import { ExitError, usageError } from "../exit-error.js";
import { keyRingOf, type KeyArgument } from "../key-option.js";

export interface DecryptOptions {
  key: KeyArgument[];
  input: string;
  output: string;
  /** The attachment a v2 object belongs to, when its file name does not say. */
  uuid?: string;
  contentType?: number;
}

export async function decrypt(options: DecryptOptions, print: (line: string) => void): Promise<void> {
  const ring = await keyRingOf(options.key);
  const { head, size } = await firstBytes(options.input, V2_MAGIC.length);
  const v2 = hasV2Magic(head);
  const plaintext = v2
    ? await decryptV2Stream(createReadStream(options.input), size, ring, identityOf(options), options.input)
    : await decryptA1Stream(createReadStream(options.input), size, ring, options.input);
  await writeAtomically(options.output, Readable.from([plaintext]));
  print(
    `decrypted ${options.input} (${v2 ? "v2" : "A1"}) into ${options.output} (${plaintext.length} bytes)`,
  );
}

/** The uuid (and content type, when known) a v2 object is read as: the options, else the file's name. */
function identityOf(options: DecryptOptions): AttachmentIdentity {
  const named = parseObjectKey({ structure: "flat", rootPath: "" }, basename(options.input));
  const uuid = options.uuid ?? named?.uuid;
  if (uuid === undefined) {
    throw usageError(
      `decrypt ${options.input}: a v2 object, bound to its attachment's uuid, which its file name does not ` +
        "give: pass --uuid (the attachment's uuid, as in Orthanc's /instances/{id}/attachments/dicom/info)",
    );
  }
  // Without a content type the header's is taken: the commitment covers it.
  return {
    uuid,
    contentType: options.contentType ?? (options.uuid === undefined ? named?.contentType : undefined),
  };
}

async function firstBytes(path: string, count: number): Promise<{ head: Uint8Array; size: number }> {
  try {
    const file = await open(path, "r");
    try {
      const size = (await file.stat()).size;
      const head = new Uint8Array(Math.min(size, count));
      const { bytesRead } = await file.read(head, 0, head.length, 0);
      return { head: head.subarray(0, bytesRead), size };
    } finally {
      await file.close();
    }
  } catch (error) {
    throw new ExitError(`decrypt ${path}: cannot read the file: ${(error as Error).message}`, 1);
  }
}
