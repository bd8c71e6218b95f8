// The GoogleCloudStorage credentials, checked when the driver opens (spec §3.4): the ServiceAccountFile read
// at once, so that a wrong path or file stops start-up with its own message rather than the first request's
// (never showing the private key), and the credentials found before any request.

import { createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";

import type { Storage } from "@google-cloud/storage";

import { StorageError, describeCause } from "../errors.js";
import { describeGcsError, type GcsErrorContext } from "./gcs-errors.js";

const SECTION = "GoogleCloudStorage";

/**
 * Have google-auth-library find the credentials now (the key file: no request; application default
 * credentials: at most a probe of the metadata server): when it finds none, the SDK sends every request
 * anonymously, and the service's 401 would hide the cause.
 */
export async function findCredentials(storage: Storage, context: GcsErrorContext): Promise<void> {
  try {
    await storage.authClient.getClient();
  } catch (cause) {
    throw new StorageError(
      "STORE_FAILED",
      { operation: "find credentials", subject: SECTION, cause },
      describeGcsError(cause, context),
    );
  }
}

/**
 * Read the key file now, so that a wrong path stops start-up with its own message rather than the first
 * request's. A parse error shows no part of the file: it holds a private key. `used`: its private key will
 * sign requests, so it must be one (otherwise OpenSSL's decoder error would only come with the first token).
 */
export async function readServiceAccountFile(
  path: string,
  used: boolean,
): Promise<{ email: string | undefined }> {
  const fail = (problem: string, cause?: unknown): StorageError =>
    new StorageError(
      "CONFIG_INVALID",
      { operation: "open backend", subject: `${SECTION}.ServiceAccountFile`, cause },
      problem,
    );
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw fail(`cannot read ${path}: ${describeCause(cause)}`, cause);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw fail(`${path} is not valid JSON: expected a service account key file downloaded from Google Cloud`);
  }
  const key = json as { type?: unknown; client_email?: unknown; private_key?: unknown } | null;
  if (typeof key !== "object" || key === null || typeof key.type !== "string") {
    throw fail(`${path} is not a Google credentials file (no "type"): expected a service account key file`);
  }
  if (
    key.type === "service_account" &&
    (typeof key.client_email !== "string" || typeof key.private_key !== "string")
  ) {
    throw fail(`${path} is a service account file without client_email or private_key`);
  }
  if (used && key.type === "service_account" && !isPrivateKeyPem(key.private_key as string)) {
    throw fail(
      `the private_key of ${path} is not a PEM private key: expected "-----BEGIN PRIVATE KEY-----", ` +
        'base64 lines and "-----END PRIVATE KEY-----", as in the key file Google Cloud gives (download a new one)',
    );
  }
  return { email: typeof key.client_email === "string" ? key.client_email : undefined };
}

function isPrivateKeyPem(text: string): boolean {
  try {
    createPrivateKey({ key: text, format: "pem" });
    return true;
  } catch {
    return false; // OpenSSL's reason says nothing an administrator can act on, and may quote the key
  }
}
