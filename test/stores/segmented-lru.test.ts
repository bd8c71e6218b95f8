// The read cache's eviction policy on its own: order of eviction, promotion, demotion, size bounds.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { SegmentedLru } from "../../src/stores/segmented-lru.js";

describe("segmented LRU", () => {
  it("evicts the oldest probationary entries first, never the protected ones for a new entry", () => {
    const lru = new SegmentedLru(100);
    for (const name of ["a", "b", "c"]) assert.deepEqual(lru.insert(name, 20), []);
    lru.touch("a"); // protected
    assert.deepEqual(lru.insert("d", 20), []);
    assert.deepEqual(lru.insert("e", 20), []);
    assert.deepEqual(lru.insert("f", 40), [
      { name: "b", bytes: 20 },
      { name: "c", bytes: 20 },
    ]);
    assert.ok(lru.has("a") && lru.isProtected("a"));
    assert.equal(lru.bytes, 100);
    assert.equal(lru.count, 4);
  });

  it("demotes the least recently used protected entries past 80% of the capacity, to probation's newest", () => {
    const lru = new SegmentedLru(100);
    for (const name of ["a", "b", "c", "d", "e"]) lru.insert(name, 20);
    for (const name of ["a", "b", "c", "d"]) lru.touch(name); // 80: all four protected
    lru.touch("a"); // a becomes the most recent protected
    lru.touch("e"); // 100 > 80: b, the least recent protected, goes back to probation
    assert.equal(lru.isProtected("b"), false);
    for (const name of ["a", "c", "d", "e"]) assert.ok(lru.isProtected(name), name);
    assert.deepEqual(lru.insert("f", 20), [{ name: "b", bytes: 20 }]);
  });

  it("replaces an entry of the same name, removes, and admits at most a fifth of the capacity", () => {
    const lru = new SegmentedLru(1000);
    lru.insert("a", 100);
    lru.insert("a", 150);
    assert.equal(lru.bytes, 150);
    assert.equal(lru.remove("a"), 150);
    assert.equal(lru.remove("a"), undefined);
    assert.equal(lru.bytes, 0);
    assert.equal(lru.maxEntryBytes, 200);
  });
});
