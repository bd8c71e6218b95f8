// Node's process metrics (prom-client's default metrics) without waking an idle daemon. prom-client measures
// the event loop's delay with a histogram (perf_hooks.monitorEventLoopDelay) that a 10 ms timer feeds for the
// life of the process: an idle daemon woke up 100 times a second. Here the same histogram, under the same
// metric names (nodejs_eventloop_lag_*, docs/deployment.md), runs only while requests arrive: the first one
// after a quiet spell enables it, and a check QUIET_MS after the last one disables it again.

import { monitorEventLoopDelay, type Histogram } from "node:perf_hooks";

import { Gauge, collectDefaultMetrics, type Registry } from "prom-client";

/** The histogram's sampling period: prom-client's default eventLoopMonitoringPrecision. */
const RESOLUTION_MS = 10;

/** How long without a request before sampling stops: a busy daemon pays one timer per QUIET_MS. */
const QUIET_MS = 2000;

/**
 * prom-client's own histogram is started with a period of 2^31 - 1 ms (24.8 days: one wake-up a month at
 * most), and its gauges are replaced by ours below.
 */
const NEVER_MS = 2 ** 31 - 1;

const LAG = "nodejs_eventloop_lag_seconds";

/** The histogram's statistics, as prom-client names them (in seconds). */
const STATISTICS: ReadonlyArray<[name: string, help: string, of: (h: Histogram) => number]> = [
  ["nodejs_eventloop_lag_min_seconds", "The minimum recorded event loop delay.", (h) => h.min],
  ["nodejs_eventloop_lag_max_seconds", "The maximum recorded event loop delay.", (h) => h.max],
  ["nodejs_eventloop_lag_mean_seconds", "The mean of the recorded event loop delays.", (h) => h.mean],
  [
    "nodejs_eventloop_lag_stddev_seconds",
    "The standard deviation of the recorded event loop delays.",
    (h) => h.stddev,
  ],
  [
    "nodejs_eventloop_lag_p50_seconds",
    "The 50th percentile of the recorded event loop delays.",
    (h) => h.percentile(50),
  ],
  [
    "nodejs_eventloop_lag_p90_seconds",
    "The 90th percentile of the recorded event loop delays.",
    (h) => h.percentile(90),
  ],
  [
    "nodejs_eventloop_lag_p99_seconds",
    "The 99th percentile of the recorded event loop delays.",
    (h) => h.percentile(99),
  ],
];

/** Samples the event loop's delay while the daemon is busy; `active()` at each request. */
export class BusyLoopDelay {
  private readonly histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  private sampling = false;
  /** Requests since sampling started: the quiet check compares it with the count it saw last. */
  private requests = 0;

  /** A request arrived: sampling starts now if it had stopped. One increment otherwise (the hot path). */
  active(): void {
    this.requests++;
    if (!this.sampling) {
      this.sampling = true;
      this.histogram.enable();
      this.checkQuiet(this.requests);
    }
  }

  /** Register the event-loop gauges; each scrape reads the histogram since the last one, then resets it. */
  register(registry: Registry): void {
    const histogram = this.histogram;
    const statistics: Gauge[] = [];
    // Registered first, and the statistics set before its first await: the registry starts every metric's
    // collect in order, then awaits them all.
    new Gauge({
      name: LAG,
      help: "Lag of event loop in seconds.",
      registers: [registry],
      aggregator: "average",
      async collect() {
        // No sample since the last scrape (idle): 0 rather than the empty histogram's sentinels.
        STATISTICS.forEach(([, , of], i) =>
          statistics[i]?.set(histogram.count === 0 ? 0 : of(histogram) / 1e9),
        );
        histogram.reset();
        // Measured at the scrape, as prom-client does: the time until a setImmediate callback runs.
        const start = performance.now();
        await new Promise((resolve) => setImmediate(resolve));
        this.set((performance.now() - start) / 1000);
      },
    });
    for (const [name, help] of STATISTICS)
      statistics.push(new Gauge({ name, help, registers: [registry], aggregator: "average" }));
  }

  private checkQuiet(seen: number): void {
    setTimeout(() => {
      if (this.requests !== seen) return this.checkQuiet(this.requests);
      this.histogram.disable();
      this.sampling = false;
    }, QUIET_MS).unref();
  }
}

/**
 * prom-client's default metrics (process CPU, memory, handles, GC, heap, version...) in `registry`, with the
 * event-loop delay sampled only while `delay` sees requests.
 */
export function collectProcessMetrics(registry: Registry, delay: BusyLoopDelay): void {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: NEVER_MS });
  for (const name of [LAG, ...STATISTICS.map(([metric]) => metric)]) registry.removeSingleMetric(name);
  delay.register(registry);
}
