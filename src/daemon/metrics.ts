// GET /cloud-storage/metrics: the daemon's metrics in Prometheus' text format (prom-client), on a
// registry of its own. Orthanc's storage requests are counted where the daemon answers them (server.ts),
// per backend section and operation; the requests each store sends to its backend, per tier and driver
// (observed-store.ts). Names and what to alert on: docs/deployment.md.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

import type { ProbeOutcome } from "../area/storage-area.js";
import type { BackendSection } from "../config/types.js";
import type { MemoryBudget } from "../crypto/memory-budget.js";
import { isStorageError } from "../errors.js";
import type { SpoolBacklog, SpoolStore } from "../stores/spool/spool-store.js";
import { observeStore, type StoreMethod, type StoreOutcome } from "../stores/observed-store.js";
import type { ObjectStore } from "../stores/object-store.js";
import type { ReadCache, ReadCacheStats } from "../stores/read-cache.js";
import { Op, type OpCode } from "./protocol.js";
import type { RestRoute } from "./rest-router.js";
import type { DispatchObserver, RequestEvent } from "./server.js";
import type { Versions } from "./versions.js";

const PREFIX = "orthanc_cloud_storage_";

/** The operation label of each storage op. */
export const OPERATION_NAMES = {
  [Op.CREATE]: "create",
  [Op.READ_WHOLE]: "read",
  [Op.READ_RANGE]: "read_range",
  [Op.REMOVE]: "remove",
} as const satisfies Partial<Record<OpCode, string>>;

/** Error label of a failure that is not a StorageError: a bug (Orthanc gone mid-answer is BRIDGE_FAILED). */
export const INTERNAL_ERROR = "INTERNAL";

/** From a local disk (~0.1 ms) to a slow cloud upload (a minute). */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export interface DaemonMetricsOptions {
  section: BackendSection;
  versions: Versions;
  /** "A1" or "plaintext". */
  format: string;
}

interface OperationSeries {
  requests: Counter.Internal;
  duration: Histogram.Internal<string>;
  received: Counter.Internal;
  sent: Counter.Internal;
}

interface StoreSeries {
  requests: Counter.Internal;
  duration: Histogram.Internal<string>;
}

export class DaemonMetrics implements DispatchObserver {
  readonly registry = new Registry();
  private readonly section: BackendSection;
  private readonly requests: Counter<"section" | "operation">;
  private readonly errors: Counter<"section" | "operation" | "code">;
  private readonly received: Counter<"section" | "operation">;
  private readonly sent: Counter<"section" | "operation">;
  private readonly duration: Histogram<"section" | "operation">;
  private readonly connections: Gauge;
  private readonly storeRequests: Counter<"tier" | "driver" | "method" | "outcome">;
  private readonly storeDuration: Histogram<"tier" | "driver" | "method">;
  private readonly readProbes: Counter<"tier" | "outcome">;
  /**
   * The labelled series each storage request updates, looked up once per label set: prom-client hashes a
   * label object at every call, which a CPU profile of the daemon showed among its costs per read.
   */
  private readonly series = new Map<string, OperationSeries>();
  private readonly storeSeries = new Map<string, StoreSeries>();

  constructor(options: DaemonMetricsOptions) {
    this.section = options.section;
    const registers = [this.registry];
    // process_start_time_seconds among them: a daemon restart shows as a new value.
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: `${PREFIX}info`,
      help: "Always 1; the labels describe this daemon",
      labelNames: ["section", "format", "plugin_version", "daemon_version"],
      registers,
    }).set(
      {
        section: options.section,
        format: options.format,
        plugin_version: options.versions.plugin,
        daemon_version: options.versions.daemon,
      },
      1,
    );
    const byOperation = ["section", "operation"] as const;
    this.requests = new Counter({
      name: `${PREFIX}requests_total`,
      help: "Storage requests from Orthanc answered, successful or not",
      labelNames: byOperation,
      registers,
    });
    this.errors = new Counter({
      name: `${PREFIX}errors_total`,
      help: "Storage requests from Orthanc that failed, by error code (docs/errors.md; INTERNAL: other)",
      labelNames: [...byOperation, "code"],
      registers,
    });
    this.received = new Counter({
      name: `${PREFIX}received_bytes_total`,
      help: "Attachment bytes received from Orthanc (create)",
      labelNames: byOperation,
      registers,
    });
    this.sent = new Counter({
      name: `${PREFIX}sent_bytes_total`,
      help: "Attachment bytes sent to Orthanc (read, read_range)",
      labelNames: byOperation,
      registers,
    });
    this.duration = new Histogram({
      name: `${PREFIX}request_duration_seconds`,
      help: "Time from a storage request's arrival to the last byte of its answer",
      labelNames: byOperation,
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.connections = new Gauge({
      name: `${PREFIX}bridge_connections`,
      help: "Connections open from the bridge (one per Orthanc thread that used the storage)",
      registers,
    });
    this.storeRequests = new Counter({
      name: `${PREFIX}store_requests_total`,
      help: "Requests sent to a storage backend (health probes included), by outcome",
      labelNames: ["tier", "driver", "method", "outcome"],
      registers,
    });
    this.storeDuration = new Histogram({
      name: `${PREFIX}store_request_duration_seconds`,
      help: "Time of a request to a storage backend (a get: until the object opens)",
      labelNames: ["tier", "driver", "method"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.readProbes = new Counter({
      name: `${PREFIX}read_probes_total`,
      help: "Backends a read looked at while searching for an object (several tiers, no custom data): found, or missed",
      labelNames: ["tier", "outcome"],
      registers,
    });
    // Every series exists from the start, so that rate() and absence alerts work before the first request.
    for (const operation of Object.values(OPERATION_NAMES)) {
      const labels = { section: this.section, operation };
      this.requests.inc(labels, 0);
      this.duration.zero(labels);
      if (operation === "create") this.received.inc(labels, 0);
      if (operation === "read" || operation === "read_range") this.sent.inc(labels, 0);
    }
  }

  /** Gauges of the MaxConcurrentInputSize budget (encryption on only). */
  watchMemoryBudget(budget: MemoryBudget): void {
    this.watchMemoryBudgets([budget]);
  }

  /** The same over several budgets (one per encrypting backend, docs/backends.md): their sums. */
  watchMemoryBudgets(budgets: readonly MemoryBudget[]): void {
    const registers = [this.registry];
    const sum = (of: (budget: MemoryBudget) => number): number => budgets.reduce((n, b) => n + of(b), 0);
    new Gauge({
      name: `${PREFIX}memory_budget_capacity_bytes`,
      help: "StorageEncryption.MaxConcurrentInputSize, in bytes (summed over the backends that encrypt)",
      registers,
    }).set(sum((budget) => budget.capacityBytes));
    new Gauge({
      name: `${PREFIX}memory_budget_in_use_bytes`,
      help: "Bytes of the memory budget held by encryptions and decryptions in progress",
      registers,
      collect() {
        this.set(sum((budget) => budget.capacityBytes - budget.availableBytes));
      },
    });
    new Gauge({
      name: `${PREFIX}memory_budget_waiting`,
      help: "Requests waiting for memory budget",
      registers,
      collect() {
        this.set(sum((budget) => budget.waiting));
      },
    });
  }

  /**
   * A read without a known location looked at `tier` (docs/backends.md, "Read order"): "found" it there, or
   * "missed" and went on to the next. Misses are the price of probing: what custom data saves.
   */
  readProbed(tier: string, outcome: ProbeOutcome): void {
    this.readProbes.inc({ tier, outcome });
  }

  /** The read cache's counters and size (LocalDisk.ReadCacheSize), read from it at each scrape. */
  watchReadCache(cache: Pick<ReadCache, "stats">): void {
    const registers = [this.registry];
    const counters: Array<[string, string, keyof ReadCacheStats]> = [
      ["hits_total", "Reads (whole or range) served from the read cache", "hits"],
      [
        "misses_total",
        "Reads served by the backend past the read cache (missing objects not counted)",
        "misses",
      ],
      ["hit_bytes_total", "Object bytes served from the read cache", "hitBytes"],
      ["fills_total", "Objects written into the read cache (on read and on put)", "fills"],
      ["filled_bytes_total", "Bytes written into the read cache, digests included", "filledBytes"],
      ["evictions_total", "Objects evicted from the read cache to make room", "evictions"],
      ["evicted_bytes_total", "Bytes evicted from the read cache", "evictedBytes"],
      [
        "integrity_failures_total",
        "Read cache files that failed their SHA-256 check (dropped, read from the backend)",
        "integrityFailures",
      ],
      ["disk_errors_total", "Read cache files that could not be read, written or removed", "diskErrors"],
    ];
    for (const [name, help, field] of counters) {
      new Counter({
        name: `${PREFIX}read_cache_${name}`,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(cache.stats()[field]);
        },
      });
    }
    const gauges: Array<[string, string, keyof ReadCacheStats]> = [
      ["bytes", "Bytes in the read cache, digests included", "bytes"],
      ["objects", "Objects in the read cache", "objects"],
      ["capacity_bytes", "LocalDisk.ReadCacheSize, in bytes", "capacityBytes"],
    ];
    for (const [name, help, field] of gauges) {
      new Gauge({
        name: `${PREFIX}read_cache_${name}`,
        help,
        registers,
        collect() {
          this.set(cache.stats()[field]);
        },
      });
    }
  }

  /** Gauges of the write-behind spool's backlog (LocalDisk.WriteBehind on only). */
  watchSpool(spool: SpoolStore, maxPendingBytes: number): void {
    const registers = [this.registry];
    const gauge = (name: string, help: string, value: (backlog: SpoolBacklog) => number): void => {
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        registers,
        collect() {
          this.set(value(spool.backlog()));
        },
      });
    };
    new Gauge({
      name: `${PREFIX}spool_capacity_bytes`,
      help: "LocalDisk.MaxPendingSize, in bytes",
      registers,
    }).set(maxPendingBytes);
    gauge(
      "spool_objects",
      "Objects acknowledged to Orthanc and not yet uploaded to the backend",
      (b) => b.objects,
    );
    gauge("spool_bytes", "Bytes of those objects", (b) => b.bytes);
    gauge("spool_oldest_age_seconds", "Age of the oldest object waiting in the spool", (b) => b.oldestAgeS);
    gauge("spool_uploading", "Uploads from the spool in progress", (b) => b.uploading);
    gauge(
      "spool_failing",
      "1 while uploads from the spool fail (the backend's error is in the health report)",
      (b) => (b.failing === undefined ? 0 : 1),
    );
  }

  /** `store`, its requests counted and timed under its tier and driver. */
  observeStore(store: ObjectStore, tier: string): ObjectStore {
    return observeStore(store, (method: StoreMethod, outcome: StoreOutcome, seconds: number) => {
      const key = `${tier}\0${store.driver}\0${method}\0${outcome}`;
      let series = this.storeSeries.get(key);
      if (series === undefined) {
        series = {
          requests: this.storeRequests.labels({ tier, driver: store.driver, method, outcome }),
          duration: this.storeDuration.labels({ tier, driver: store.driver, method }),
        };
        this.storeSeries.set(key, series);
      }
      series.requests.inc();
      series.duration.observe(seconds);
    });
  }

  connectionOpened(): void {
    this.connections.inc();
  }

  connectionClosed(): void {
    this.connections.dec();
  }

  requestAnswered(event: RequestEvent): void {
    const operation = OPERATION_NAMES[event.op as keyof typeof OPERATION_NAMES] as string | undefined;
    if (operation === undefined) return; // REST requests are not storage requests
    const labels = { section: this.section, operation };
    let series = this.series.get(operation);
    if (series === undefined) {
      series = {
        requests: this.requests.labels(labels),
        duration: this.duration.labels(labels),
        received: this.received.labels(labels),
        sent: this.sent.labels(labels),
      };
      this.series.set(operation, series);
    }
    series.requests.inc();
    series.duration.observe(event.seconds);
    if (event.bytesIn > 0) series.received.inc(event.bytesIn);
    if (event.bytesOut > 0) series.sent.inc(event.bytesOut);
    if (event.error !== undefined) this.errors.inc({ ...labels, code: errorLabel(event.error) });
  }

  /** The text Prometheus scrapes. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  route(): RestRoute {
    return {
      pattern: "/cloud-storage/metrics",
      methods: {
        GET: async () => ({ status: 200, contentType: this.registry.contentType, body: await this.text() }),
      },
    };
  }
}

/** The StorageError code of a failure, looked for along its causes. */
function errorLabel(error: unknown): string {
  for (let cause = error, depth = 0; cause !== undefined && depth < 8; depth++) {
    if (isStorageError(cause)) return cause.code;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return INTERNAL_ERROR;
}
