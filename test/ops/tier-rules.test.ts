// Tier rules' dates and schedule (docs/backends.md, "Tier rules"): the last StudyDate a rule selects, and
// the scheduled run once a day at the first tick on or after TierSchedule.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { TierSchedule } from "../../src/daemon/tier-rules-route.js";
import { cutoffDate } from "../../src/ops/tier-rules.js";

describe("tier rules", () => {
  it("select studies whose StudyDate is on or before today minus OlderThanDays (UTC), across months and leap days", () => {
    assert.equal(cutoffDate(new Date("2026-12-05T23:59:00Z"), 0), "20261205");
    assert.equal(cutoffDate(new Date("2026-12-05T00:00:00Z"), 5), "20261130");
    assert.equal(cutoffDate(new Date("2024-03-01T12:00:00Z"), 1), "20240229");
    assert.equal(cutoffDate(new Date("2026-12-05T12:00:00Z"), 365), "20251205");
  });

  it("run by schedule once a day, at the first tick on or after the time (UTC)", () => {
    const schedule = new TierSchedule({ hour: 2, minute: 30 });
    assert.equal(schedule.take(new Date("2026-12-05T02:29:59Z")), false);
    assert.equal(schedule.take(new Date("2026-12-05T02:30:10Z")), true);
    assert.equal(schedule.take(new Date("2026-12-05T02:31:10Z")), false, "once that day");
    assert.equal(schedule.take(new Date("2026-12-05T23:00:00Z")), false);
    assert.equal(schedule.take(new Date("2026-12-06T01:00:00Z")), false, "not before the time the next day");
    // A daemon (re)started after the time runs that day's rules at its first tick.
    assert.equal(new TierSchedule({ hour: 2, minute: 30 }).take(new Date("2026-12-06T09:00:00Z")), true);
  });
});
