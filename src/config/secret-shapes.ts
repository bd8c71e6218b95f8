// What a master key looks like as text, to keep one out of messages when it is pasted where a key file's
// path belongs (`"MasterKey": [1, "q83vEjRW..."]`): the path then names no file, and every message that
// names the file would print the key.

import { dirname, join } from "node:path";

/** Shown instead of a secret value in every message. */
export const HIDDEN = "<hidden>";

/** 32 bytes as base64 (openssl's output) or hex (key files before 2.0.0). */
const KEY_SHAPED = /^(?:[A-Za-z0-9+/]{42,44}={0,2}|[0-9a-fA-F]{64})$/;

export function looksLikeKey(text: string): boolean {
  return KEY_SHAPED.test(text.trim());
}

/**
 * A key file's path as messages show it: as is, unless the path or one of its trailing parts looks like a
 * key (a relative path was resolved against the configuration's folder, and a base64 key may hold "/"):
 * that part is then shown as HIDDEN.
 */
export function showKeyPath(path: string): string {
  if (looksLikeKey(path)) return HIDDEN;
  for (let folder = dirname(path); ; folder = dirname(folder)) {
    if (looksLikeKey(path.slice(folder.length).replace(/^\//, ""))) return join(folder, HIDDEN);
    if (folder === dirname(folder)) return path;
  }
}
