// The MaxConcurrentInputSize budget (spec §1.10), FIFO without starvation.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { MemoryBudget } from "../../src/crypto/memory-budget.js";
import { rejectsWith } from "./support.js";

const MB = 1024 * 1024;

describe("MemoryBudget", () => {
  it("grants at once while bytes are free", async () => {
    const budget = new MemoryBudget(100);
    const a = await budget.acquire(60, "a", "encrypt");
    const b = await budget.acquire(40, "b", "encrypt");
    assert.equal(budget.availableBytes, 0);
    a();
    b();
    assert.equal(budget.availableBytes, 100);
  });

  it("callers wait, then proceed in arrival order as bytes are released", async () => {
    const budget = new MemoryBudget(100);
    const order: string[] = [];
    const first = await budget.acquire(100, "first", "decrypt");
    const waiters = (["b", "c", "d"] as const).map((name) =>
      budget.acquire(50, name, "decrypt").then((release) => {
        order.push(name);
        return release;
      }),
    );
    await tick();
    assert.deepEqual(order, []);
    assert.equal(budget.waiting, 3);
    first();
    await tick();
    assert.deepEqual(order, ["b", "c"]);
    const [releaseB] = await Promise.all(waiters.slice(0, 2));
    releaseB?.();
    await tick();
    assert.deepEqual(order, ["b", "c", "d"]);
  });

  it("a large request is not starved by a stream of small ones", async () => {
    const budget = new MemoryBudget(100);
    const held = await budget.acquire(30, "held", "encrypt");
    let bigServed = false;
    const big = budget.acquire(100, "big", "encrypt").then((release) => {
      bigServed = true;
      return release;
    });
    let smallServed = false;
    const small = budget.acquire(10, "small", "encrypt").then((release) => {
      smallServed = true;
      return release;
    });
    await tick();
    assert.equal(smallServed, false, "a small request behind the big one waits although 70 bytes are free");
    held();
    (await big)();
    assert.equal(bigServed, true);
    (await small)();
    assert.equal(budget.availableBytes, 100);
  });

  it("tryAcquire grants only at once: never past a waiter, never more than is free", async () => {
    const budget = new MemoryBudget(100);
    const a = budget.tryAcquire(60);
    assert.ok(a, "free: granted");
    assert.equal(budget.availableBytes, 40);
    assert.equal(budget.tryAcquire(41), undefined, "more than is free");
    assert.equal(budget.tryAcquire(101), undefined, "more than the capacity: acquire says TOO_LARGE");
    assert.equal(budget.availableBytes, 40, "a refusal holds nothing");
    const waiting = budget.acquire(50, "w", "decrypt");
    assert.equal(budget.waiting, 1);
    assert.equal(budget.tryAcquire(10), undefined, "10 bytes are free, but a caller waits before");
    const zero = budget.tryAcquire(0);
    assert.ok(zero, "0 bytes pass at once");
    zero();
    a();
    (await waiting)();
    const b = budget.tryAcquire(100);
    assert.ok(b);
    b();
    b();
    assert.equal(budget.availableBytes, 100, "given back once");
  });

  it("releasing twice gives the bytes back once", async () => {
    const budget = new MemoryBudget(100);
    const release = await budget.acquire(70, "a", "encrypt");
    release();
    release();
    assert.equal(budget.availableBytes, 100);
  });

  it("0 bytes pass at once, even behind waiters", async () => {
    const budget = new MemoryBudget(100);
    const held = await budget.acquire(100, "held", "encrypt");
    const waiting = budget.acquire(1, "w", "encrypt");
    const zero = await budget.acquire(0, "zero", "encrypt");
    zero();
    held();
    (await waiting)();
    assert.equal(budget.availableBytes, 100);
  });

  it("a request larger than the whole capacity is refused at once with TOO_LARGE", async () => {
    const budget = new MemoryBudget(2 * MB);
    await rejectsWith(
      () => budget.acquire(2 * MB + 1, "ab/cd/uuid.dcm.enc", "encrypt"),
      "TOO_LARGE",
      /^encrypt ab\/cd\/uuid\.dcm\.enc: /,
      /2097153 bytes, larger than the MaxConcurrentInputSize budget of 2 MB/,
      /increase StorageEncryption\.MaxConcurrentInputSize/,
    );
    assert.equal(budget.waiting, 0);
    (await budget.acquire(2 * MB, "exact", "encrypt"))();
  });

  it("gives back part of a reservation, then the rest, and serves waiters as it goes", async () => {
    const budget = new MemoryBudget(100);
    const release = await budget.acquire(80, "gathered", "decrypt");
    let served = false;
    const waiting = budget.acquire(50, "w", "decrypt").then((r) => ((served = true), r));
    release(30);
    await tick();
    assert.equal(served, true, "50 bytes free once 30 of the 80 came back");
    assert.equal(budget.availableBytes, 0);
    release(1000); // more than is held: only the 50 still held come back
    assert.equal(budget.availableBytes, 50);
    release();
    release(-5);
    assert.equal(budget.availableBytes, 50);
    (await waiting)();
    assert.equal(budget.availableBytes, 100);
  });

  it("a release called with something else than a number gives everything back", async () => {
    const budget = new MemoryBudget(100);
    const release = (await budget.acquire(60, "held", "decrypt")) as (argument?: unknown) => void;
    release(new Error("closed"));
    assert.equal(budget.availableBytes, 100);
    const again = (await budget.acquire(60, "held", "decrypt")) as (argument?: unknown) => void;
    again(Number.NaN);
    assert.equal(budget.availableBytes, 100);
  });

  it("refuses nonsense sizes", async () => {
    assert.throws(() => new MemoryBudget(0), RangeError);
    assert.throws(() => new MemoryBudget(1.5), RangeError);
    await assert.rejects(new MemoryBudget(10).acquire(-1, "s", "encrypt"), RangeError);
  });
});
