// /cloud-storage/tier-rules (docs/backends.md, "Tier rules"): GET shows the rules, the schedule and the last
// run; POST runs them now (`{"DryRun": true}` counts only), each rule's studies becoming a job in Orthanc's
// job list. The bridge's clock posts TIER_TICK_PATH once a minute (native/rest.c): the scheduled run
// starts at the first tick on or after TierSchedule each day (UTC).

import type { TieringOptions } from "../config/types.js";
import { describeCause } from "../errors.js";
import type { Logger } from "../log.js";
import { MOVE_STORAGE_JOB_TYPE } from "../ops/move-storage.js";
import { runTierRules, type RuleRun } from "../ops/tier-rules.js";
import type { OrthancCallbacks } from "./bridge-callbacks.js";
import { BridgedOrthanc } from "./bridged-orthanc.js";
import { TIER_TICK_PATH } from "./protocol.js";
import type { RestReply, RestRoute } from "./rest-router.js";

export interface TierRulesRouteOptions {
  tiering: TieringOptions | undefined;
  logger: Logger;
  /** The clock; tests set it. */
  now?: () => Date;
}

interface LastRun {
  at: string;
  trigger: "schedule" | "request";
  dryRun: boolean;
  rules?: RuleRun[];
  error?: string;
}

/** Decides when the scheduled run is due: once a day, at the first tick on or after the time. */
export class TierSchedule {
  /** The UTC day (YYYY-MM-DD) of the last scheduled run of this daemon. */
  private lastDay: string | undefined;

  constructor(private readonly at: { hour: number; minute: number }) {}

  /** Whether a scheduled run is due now; if so, it counts as started. */
  take(now: Date): boolean {
    const day = now.toISOString().slice(0, 10);
    const minutes = now.getUTCHours() * 60 + now.getUTCMinutes();
    if (this.lastDay === day || minutes < this.at.hour * 60 + this.at.minute) return false;
    this.lastDay = day;
    return true;
  }
}

export function tierRulesRoutes({
  tiering,
  logger,
  now = () => new Date(),
}: TierRulesRouteOptions): RestRoute[] {
  let last: LastRun | undefined;
  const schedule = tiering?.schedule === undefined ? undefined : new TierSchedule(tiering.schedule);

  const run = async (callbacks: OrthancCallbacks, trigger: LastRun["trigger"], dryRun: boolean) => {
    const rules = tiering?.rules ?? [];
    const started = now();
    const record: LastRun = { at: started.toISOString(), trigger, dryRun };
    last = record;
    try {
      const orthanc = new BridgedOrthanc(callbacks);
      record.rules = await runTierRules(orthanc, rules, {
        today: started,
        dryRun,
        submit: (state, content) =>
          callbacks.submitJob({
            type: MOVE_STORAGE_JOB_TYPE,
            priority: 0,
            content: JSON.stringify(content),
            state: JSON.stringify(state),
          }),
      });
      const jobs = record.rules.filter((rule) => rule.job !== undefined);
      logger.info(
        `tier rules (${trigger}${dryRun ? ", dry run" : ""}): ` +
          record.rules
            .map((rule) => `${rule.rule}: ${rule.studies} studies${rule.job ? ` (job ${rule.job})` : ""}`)
            .join("; ") +
          (jobs.length === 0 ? "; nothing to do" : ""),
      );
      return record;
    } catch (error) {
      record.error = describeCause(error);
      logger.error(`tier rules (${trigger}): ${record.error}`);
      throw error;
    }
  };

  const main: RestRoute = {
    pattern: "/cloud-storage/tier-rules",
    methods: {
      GET: () =>
        Promise.resolve(
          json(200, {
            Rules: tiering?.rules ?? [],
            Schedule: scheduleText(tiering),
            LastRun: last ?? null,
          }),
        ),
      POST: async (request, callbacks) => {
        if (tiering === undefined || tiering.rules.length === 0) {
          return text(404, "no tier rules: OrthancCloudStorage.TierRules is not set in this configuration");
        }
        let dryRun = false;
        const body = request.body.toString("utf8").trim();
        if (body !== "") {
          let parsed: unknown;
          try {
            parsed = JSON.parse(body);
          } catch {
            parsed = undefined;
          }
          const flag = (parsed as Record<string, unknown> | undefined)?.["DryRun"];
          if (
            typeof parsed !== "object" ||
            parsed === null ||
            (flag !== undefined && typeof flag !== "boolean")
          ) {
            return text(400, 'the body must be empty or a JSON object such as {"DryRun": true}');
          }
          dryRun = flag === true;
        }
        const record = await run(callbacks, "request", dryRun);
        return json(200, record);
      },
    },
  };

  const tick: RestRoute = {
    pattern: TIER_TICK_PATH,
    methods: {
      POST: async (_request, callbacks) => {
        if (schedule === undefined || !schedule.take(now())) return text(200, "not due");
        // The tick's answer does not wait for the jobs, only for their submission.
        await run(callbacks, "schedule", false).catch(() => undefined);
        return text(200, "ran");
      },
    },
  };
  return [main, tick];
}

function scheduleText(tiering: TieringOptions | undefined): string | null {
  const at = tiering?.schedule;
  if (at === undefined) return null;
  return `${String(at.hour).padStart(2, "0")}:${String(at.minute).padStart(2, "0")} UTC`;
}

function json(status: number, value: unknown): RestReply {
  return { status, contentType: "application/json", body: `${JSON.stringify(value, null, 2)}\n` };
}

function text(status: number, message: string): RestReply {
  return { status, contentType: "text/plain; charset=utf-8", body: `${message}\n` };
}
