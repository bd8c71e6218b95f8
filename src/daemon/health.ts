// GET /cloud-storage/health: is this node fit to serve? A live probe of the backend (the start-up check,
// StorageArea.checkAccess: a GET of an object that does not exist) bounded by a short timeout, so that
// a load balancer's probe gets its answer quickly even when the backend hangs. 200 when healthy, else 503.

import type { StorageArea } from "../area/storage-area.js";
import type { BackendSection } from "../config/types.js";
import { A1Codec } from "../crypto/a1-codec.js";
import { EncryptedCodec } from "../crypto/encrypted-codec.js";
import { describeCause } from "../errors.js";
import type { ReadCache } from "../stores/read-cache.js";
import type { SpoolBacklog, SpoolStore } from "../stores/spool/spool-store.js";
import type { RestRoute } from "./rest-router.js";
import type { Versions } from "./versions.js";

export interface HealthReport {
  healthy: boolean;
  backend: {
    section: BackendSection;
    location: string;
    reachable: boolean;
    /** How long the probe took, or has been waiting when it timed out. */
    latencyMs: number;
    error?: string;
  };
  /**
   * With write-behind: what waits for upload. `alert` says why the node is unhealthy on its account: the
   * oldest object older than LocalDisk.BacklogAlertAge, or the spool 90% full.
   */
  spool?: SpoolBacklog & { capacityBytes: number; alert?: string };
  /** `loaded` is false when StorageEncryption is disabled: no key is needed then. */
  keys: { loaded: boolean; currentKeyId?: number };
  versions: Versions;
  /** With LocalDisk.ReadCacheSize: how full the read cache is (it never makes the node unhealthy). */
  readCache?: { bytes: number; capacityBytes: number; objects: number };
}

export interface HealthOptions {
  area: StorageArea;
  section: BackendSection;
  versions: Versions;
  /** The read cache, when LocalDisk has one. */
  readCache?: Pick<ReadCache, "stats">;
  /** How long a probe may take before the backend counts as unreachable. */
  timeoutMs?: number;
  /** The write-behind spool, and when its backlog makes the node unhealthy. */
  spool?: { store: SpoolStore; capacityBytes: number; alertAgeMs: number };
}

/** The share of LocalDisk.MaxPendingSize past which the node reports unhealthy: creates fail soon after. */
const SPOOL_ALERT_FILL = 0.9;

/** Load balancers commonly give a probe 5 s; answer well within it. */
const DEFAULT_TIMEOUT_MS = 3000;

interface ProbeOutcome {
  reachable: boolean;
  latencyMs: number;
  error?: string;
}

export class HealthCheck {
  private readonly timeoutMs: number;
  /** The probe in flight: concurrent reports share it, and a hung one is not started again. */
  private pending: { started: number; outcome: Promise<ProbeOutcome> } | undefined;

  constructor(private readonly options: HealthOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  async report(): Promise<HealthReport> {
    const { area, section, versions } = this.options;
    const tier = area.tiers.find((t) => t.name === "object-storage") ?? area.tiers[0];
    const probe = await this.probe();
    const codec = area.codec;
    const keys =
      codec instanceof A1Codec || codec instanceof EncryptedCodec
        ? { loaded: true, currentKeyId: codec.ring.current.id }
        : { loaded: false };
    const encrypted = codec.format !== "plaintext";
    const spool = this.spoolReport();
    const report: HealthReport = {
      healthy: probe.reachable && (keys.loaded || !encrypted) && spool?.alert === undefined,
      backend: { section, location: tier?.store.location ?? "", ...probe, latencyMs: round(probe.latencyMs) },
      keys,
      versions,
    };
    const cache = this.options.readCache?.stats();
    if (cache !== undefined) {
      report.readCache = { bytes: cache.bytes, capacityBytes: cache.capacityBytes, objects: cache.objects };
    }
    if (spool !== undefined) report.spool = spool;
    return report;
  }

  private spoolReport(): HealthReport["spool"] {
    const { spool } = this.options;
    if (spool === undefined) return undefined;
    const backlog = spool.store.backlog();
    const report: NonNullable<HealthReport["spool"]> = {
      ...backlog,
      oldestAgeS: round(backlog.oldestAgeS),
      capacityBytes: spool.capacityBytes,
    };
    if (backlog.oldestAgeS * 1000 > spool.alertAgeMs) {
      report.alert =
        `the oldest object in the write-behind spool waits for ${Math.round(backlog.oldestAgeS)} s ` +
        `(LocalDisk.BacklogAlertAge: ${spool.alertAgeMs / 1000} s)`;
    } else if (backlog.bytes > SPOOL_ALERT_FILL * spool.capacityBytes) {
      report.alert =
        `the write-behind spool is ${Math.round((100 * backlog.bytes) / spool.capacityBytes)}% full ` +
        "(LocalDisk.MaxPendingSize): creates fail once it is full";
    }
    return report;
  }

  route(): RestRoute {
    return {
      pattern: "/cloud-storage/health",
      methods: {
        GET: async () => {
          const report = await this.report();
          return {
            status: report.healthy ? 200 : 503,
            contentType: "application/json",
            body: `${JSON.stringify(report, null, 2)}\n`,
          };
        },
      },
    };
  }

  /**
   * The outcome of the probe in flight, or of a new one; at most `timeoutMs` after the probe started.
   * A probe that hangs longer keeps running (stores take no abort signal) but is not started again
   * until it settles: reports meanwhile say how long it has been waiting.
   */
  private probe(): Promise<ProbeOutcome> {
    const pending = (this.pending ??= this.startProbe());
    const left = Math.max(0, this.timeoutMs - (performance.now() - pending.started));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const waited = performance.now() - pending.started;
        resolve({
          reachable: false,
          latencyMs: waited,
          error:
            `no answer from the backend within ${this.timeoutMs} ms ` +
            `(its probe has been waiting for ${Math.round(waited)} ms)`,
        });
      }, left);
      void pending.outcome.then((outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      });
    });
  }

  private startProbe(): { started: number; outcome: Promise<ProbeOutcome> } {
    const started = performance.now();
    const outcome = this.options.area.checkAccess().then(
      (): ProbeOutcome => ({ reachable: true, latencyMs: performance.now() - started }),
      (error: unknown): ProbeOutcome => ({
        reachable: false,
        latencyMs: performance.now() - started,
        error: describeCause(error),
      }),
    );
    const pending = { started, outcome };
    void outcome.then(() => {
      if (this.pending === pending) this.pending = undefined;
    });
    return pending;
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
