// What one backend section brings to the configuration layer: its schema, its reader and the lines
// `config check` prints for it. Each section is one module under sections/, imported by its driver for
// its options type; the list of them is backend-sections.ts.

import type { OptionSpec } from "./options.js";
import type { SectionReader } from "./section-reader.js";
import type { BackendOptions, BackendSection, OrthancGlobalOptions } from "./types.js";

/** Orthanc's own options as the section readers need them (spec §3.1). */
export interface OrthancGlobals extends OrthancGlobalOptions {
  /** `HttpsCACertificates`, for S3 only. */
  caFile: string | undefined;
  storageDirectorySet: boolean;
}

/** One `config check` line: the option as named in the section, and its resolved value as shown. */
export type ResolvedLine = [option: string, value: string];

export type OptionsOfSection<S extends BackendSection> = Extract<BackendOptions, { section: S }>;

export interface BackendSectionModule<S extends BackendSection = BackendSection> {
  readonly section: S;
  /** The section's own options; the common ones (options.ts) are added by the caller. */
  readonly options: readonly OptionSpec[];
  /**
   * Read the section's own options. A required string read as undefined has already been reported: ""
   * then only fills a result that is discarded.
   */
  readonly read: (r: SectionReader, globals: OrthancGlobals) => OptionsOfSection<S>;
  /** The resolved options as `config check` prints them, secrets hidden. */
  readonly lines: (backend: OptionsOfSection<S>) => ResolvedLine[];
}

/** A value as `config check` shows it. */
export function json(value: unknown): string {
  return JSON.stringify(value);
}

/** A string option's value, with "" read as not set. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === "" ? undefined : value;
}
