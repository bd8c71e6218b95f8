// Tier rules (docs/backends.md, "Tier rules"): which studies each rule selects today (by StudyDate, and
// optionally by the modalities of their series), and the job each rule's studies become: a MoveStorage job
// to its backend, or one that sets a storage class in place (move-storage.ts runs both, with progress, and
// resumes them after a restart).

import type { TierRule } from "../config/types.js";
import type { OrthancIndex } from "./orthanc-api.js";
import {
  initialMoveState,
  moveContent,
  resolveResources,
  type MoveStorageRequest,
  type MoveStorageState,
} from "./move-storage.js";

/** What the rules need of Orthanc: its REST API (over HTTP, or through the bridge inside it). */
export type StudyFinder = OrthancIndex & { post<T>(path: string, body: unknown): Promise<T> };

/** The studies a rule selects on `today`: their Orthanc ids. */
export async function studiesForRule(orthanc: StudyFinder, rule: TierRule, today: Date): Promise<string[]> {
  // DICOM dates are YYYYMMDD; "-D" selects StudyDate <= D (Orthanc's range matching). Studies without a
  // StudyDate match no date range: they never tier.
  const query = { StudyDate: `-${cutoffDate(today, rule.olderThanDays)}` };
  const ids = await orthanc.post<string[]>("/tools/find", { Level: "Study", Query: query });
  if (rule.modalities.length === 0) return ids;
  const selected: string[] = [];
  for (const id of ids) {
    const series = await orthanc.get<Array<{ MainDicomTags?: { Modality?: string } }>>(
      `/studies/${id}/series`,
    );
    const modalities = new Set((series ?? []).map((s) => s.MainDicomTags?.Modality ?? ""));
    if (rule.modalities.some((modality) => modalities.has(modality))) selected.push(id);
  }
  return selected;
}

/** The last StudyDate a rule of `days` selects on `today` (UTC): today minus that many days, YYYYMMDD. */
export function cutoffDate(today: Date, days: number): string {
  const cutoff = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - days));
  return cutoff.toISOString().slice(0, 10).replaceAll("-", "");
}

/** One rule's part of a run: the studies it selected and the job that handles them (none when none). */
export interface RuleRun {
  rule: string;
  studies: number;
  /** The job's id in Orthanc; absent when the rule selected nothing. */
  job?: string;
}

/** Where a rule's job goes: what submits it to Orthanc's job engine. */
export type SubmitJob = (state: MoveStorageState, content: Record<string, unknown>) => Promise<string>;

/**
 * Runs every rule once: the studies it selects, then one job per rule that selected any. Rules run in
 * order; a study two rules select is handled by both jobs (e.g. moved, then its class set there).
 */
export async function runTierRules(
  orthanc: StudyFinder,
  rules: readonly TierRule[],
  options: { today: Date; dryRun: boolean; submit: SubmitJob },
): Promise<RuleRun[]> {
  const runs: RuleRun[] = [];
  for (const rule of rules) {
    const studies = await studiesForRule(orthanc, rule, options.today);
    if (studies.length === 0) {
      runs.push({ rule: rule.name, studies: 0 });
      continue;
    }
    const request: MoveStorageRequest = {
      resources: studies,
      target: rule.action.kind === "move" ? rule.action.to : rule.action.in,
      synchronous: false,
      priority: 0,
      dryRun: options.dryRun,
    };
    if (rule.action.kind === "storage-class") request.storageClass = rule.action.storageClass;
    const resolved = await resolveResources(orthanc, studies);
    const state = initialMoveState(request, resolved, rule.name);
    runs.push({
      rule: rule.name,
      studies: studies.length,
      job: await options.submit(state, moveContent(state)),
    });
  }
  return runs;
}
