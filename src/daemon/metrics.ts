// GET /cloud-storage/metrics: the daemon's metrics in Prometheus' text format (prom-client), on a
// registry of its own. Orthanc's storage requests are counted where the daemon answers them (server.ts),
// per backend section and operation; the requests each store sends to its backend, per tier and driver
// (observed-store.ts). Names and what to alert on: docs/deployment.md.

import { Counter, Gauge, Histogram, Registry } from "prom-client";

import type { ProbeOutcome } from "../area/storage-area.js";
import type { BackendSection } from "../config/types.js";
import type { MemoryBudget } from "../crypto/memory-budget.js";
import { isStorageError } from "../errors.js";
import type { SpoolBacklog, SpoolStore } from "../stores/spool/spool-store.js";
import { observeStore, type StoreMethod, type StoreOutcome } from "../stores/observed-store.js";
import type { ObjectStore } from "../stores/object-store.js";
import type { ReadCache, ReadCacheStats } from "../stores/read-cache.js";
import { BusyLoopDelay, collectProcessMetrics } from "./event-loop-delay.js";
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
  requests: CountedSeries;
  duration: DeferredObservations;
  received: CountedSeries;
  sent: CountedSeries;
}

interface StoreSeries {
  requests: CountedSeries;
  duration: DeferredObservations;
}

// What each storage request updates is kept in plain numbers and arrays, and handed to prom-client at each
// scrape: prom-client hashes a label object at every inc and observe, even through labels(), which CPU
// profiles of the daemon's reads showed among its costs per read (docs/performance.md, "Issue 15: latest").

/** One labelled series of a counter, counted here. */
class CountedSeries {
  value = 0;

  /** `shown`: exposed from the start, at 0; otherwise once counted. */
  constructor(
    readonly labels: Readonly<Record<string, string>>,
    readonly shown: boolean,
  ) {}
}

/** How many observations of a series wait for the next scrape at most; then they are handed over at once. */
const DEFERRED_OBSERVATIONS = 4096;

/** The observations of one histogram series, handed to prom-client at each scrape, or once the array is full. */
class DeferredObservations {
  private readonly values = new Float64Array(DEFERRED_OBSERVATIONS);
  private count = 0;

  constructor(private readonly series: Histogram.Internal<string>) {}

  observe(value: number): void {
    this.values[this.count++] = value;
    if (this.count === DEFERRED_OBSERVATIONS) this.flush();
  }

  flush(): void {
    for (let i = 0; i < this.count; i++) this.series.observe(this.values[i] as number);
    this.count = 0;
  }
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
  /** The series each storage request updates, by operation. */
  private readonly series = new Map<string, OperationSeries>();
  /** Every deferred histogram series, handed over before each scrape. */
  private readonly deferred: DeferredObservations[] = [];
  /** The counted series of each counter, handed over at each scrape. */
  private readonly counted = new Map<Counter<string>, CountedSeries[]>();
  /** The event loop's delay, sampled while requests arrive. */
  private readonly loopDelay = new BusyLoopDelay();

  constructor(options: DaemonMetricsOptions) {
    this.section = options.section;
    const registers = [this.registry];
    // process_start_time_seconds among them: a daemon restart shows as a new value.
    collectProcessMetrics(this.registry, this.loopDelay);
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
    const counted = this.counted;
    // A counter's collect: its values are the counts kept here (`this`: the counter).
    const publishCounts = function (this: Counter<string>): void {
      this.reset();
      for (const series of counted.get(this) ?? []) {
        if (series.shown || series.value > 0) this.inc(series.labels, series.value);
      }
    };
    this.requests = new Counter({
      name: `${PREFIX}requests_total`,
      help: "Storage requests from Orthanc answered, successful or not",
      labelNames: byOperation,
      registers,
      collect: publishCounts,
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
      collect: publishCounts,
    });
    this.sent = new Counter({
      name: `${PREFIX}sent_bytes_total`,
      help: "Attachment bytes sent to Orthanc (read, read_range)",
      labelNames: byOperation,
      registers,
      collect: publishCounts,
    });
    const flushDeferred = (): void => {
      for (const series of this.deferred) series.flush();
    };
    this.duration = new Histogram({
      name: `${PREFIX}request_duration_seconds`,
      help: "Time from a storage request's arrival to the last byte of its answer",
      labelNames: byOperation,
      buckets: LATENCY_BUCKETS,
      registers,
      collect: flushDeferred,
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
      collect: publishCounts,
    });
    this.storeDuration = new Histogram({
      name: `${PREFIX}store_request_duration_seconds`,
      help: "Time of a request to a storage backend (a get: until the object opens)",
      labelNames: ["tier", "driver", "method"],
      buckets: LATENCY_BUCKETS,
      registers,
      collect: flushDeferred,
    });
    this.readProbes = new Counter({
      name: `${PREFIX}read_probes_total`,
      help: "Backends a read looked at while searching for an object (several tiers, no custom data): found, or missed",
      labelNames: ["tier", "outcome"],
      registers,
    });
    // Every series exists from the start, so that rate() and absence alerts work before the first request.
    for (const operation of Object.values(OPERATION_NAMES)) {
      this.duration.zero({ section: this.section, operation });
      this.operationSeries(operation);
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
    // The series of each method and outcome, looked up without building a key at each request.
    const bySeries = new Map<StoreMethod, Map<StoreOutcome, StoreSeries>>();
    return observeStore(store, (method: StoreMethod, outcome: StoreOutcome, seconds: number) => {
      let byOutcome = bySeries.get(method);
      if (byOutcome === undefined) {
        byOutcome = new Map();
        bySeries.set(method, byOutcome);
      }
      let series = byOutcome.get(outcome);
      if (series === undefined) {
        series = {
          requests: this.count(this.storeRequests, { tier, driver: store.driver, method, outcome }, true),
          duration: this.defer(this.storeDuration.labels({ tier, driver: store.driver, method })),
        };
        byOutcome.set(outcome, series);
      }
      series.requests.value++;
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
    this.loopDelay.active();
    const operation = OPERATION_NAMES[event.op as keyof typeof OPERATION_NAMES] as string | undefined;
    if (operation === undefined) return; // REST requests are not storage requests
    const series = this.operationSeries(operation);
    series.requests.value++;
    series.duration.observe(event.seconds);
    series.received.value += event.bytesIn;
    series.sent.value += event.bytesOut;
    if (event.error !== undefined) {
      this.errors.inc({ section: this.section, operation, code: errorLabel(event.error) });
    }
  }

  /** The series of an operation, created on first use (all of them in the constructor). */
  private operationSeries(operation: string): OperationSeries {
    let series = this.series.get(operation);
    if (series === undefined) {
      const labels = { section: this.section, operation };
      series = {
        requests: this.count(this.requests, labels, true),
        duration: this.defer(this.duration.labels(labels)),
        received: this.count(this.received, labels, operation === "create"),
        sent: this.count(this.sent, labels, operation === "read" || operation === "read_range"),
      };
      this.series.set(operation, series);
    }
    return series;
  }

  private count(counter: Counter<string>, labels: Record<string, string>, shown: boolean): CountedSeries {
    const series = new CountedSeries(labels, shown);
    const list = this.counted.get(counter) ?? [];
    list.push(series);
    this.counted.set(counter, list);
    return series;
  }

  private defer(series: Histogram.Internal<string>): DeferredObservations {
    const deferred = new DeferredObservations(series);
    this.deferred.push(deferred);
    return deferred;
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
