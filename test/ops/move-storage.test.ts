// The /move-storage request, checked as the official route checks it (spec §4.3), and the job's content.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  MoveRequestError,
  initialMoveState,
  moveContent,
  parseMoveState,
  startOverMoveState,
  parseMoveStorageRequest,
} from "../../src/ops/move-storage.js";

function refused(body: string): MoveRequestError {
  try {
    parseMoveStorageRequest(body);
  } catch (error) {
    assert.ok(error instanceof MoveRequestError);
    return error;
  }
  assert.fail(`accepted ${body}`);
}

describe("/move-storage request", () => {
  it("is synchronous by default, like the official route; Asynchronous or Synchronous: false make it a job", () => {
    const base = { Resources: ["a-b"], TargetStorage: "file-system" };
    assert.equal(parseMoveStorageRequest(JSON.stringify(base)).synchronous, true);
    assert.equal(parseMoveStorageRequest(JSON.stringify({ ...base, Asynchronous: true })).synchronous, false);
    assert.equal(parseMoveStorageRequest(JSON.stringify({ ...base, Synchronous: false })).synchronous, false);
    assert.deepEqual(parseMoveStorageRequest(JSON.stringify({ ...base, Priority: 5, DryRun: true })), {
      resources: ["a-b"],
      target: "file-system",
      synchronous: true,
      priority: 5, // as given: the official wrapper's negation (spec §4.3) is a bug not copied
      dryRun: true,
    });
  });

  it("with several backends, takes a backend's name as TargetStorage and refuses others, naming them", () => {
    const names = ["hot", "archive", "disk"];
    const body = (target: string) => JSON.stringify({ Resources: ["a-b"], TargetStorage: target });
    assert.equal(parseMoveStorageRequest(body("archive"), names).target, "archive");
    try {
      parseMoveStorageRequest(body("file-system"), names);
      assert.fail("accepted file-system");
    } catch (error) {
      assert.ok(error instanceof MoveRequestError);
      assert.equal(error.status, 400);
      assert.match(error.message, /"TargetStorage" must be "hot" or "archive" or "disk", not "file-system"/);
    }
  });

  it("refuses what the official route refuses, with a 400 saying which field", () => {
    assert.match(refused("not json").message, /JSON object/);
    assert.match(refused("[]").message, /JSON object/);
    assert.match(refused('{"TargetStorage":"file-system"}').message, /"Resources"/);
    assert.match(refused('{"Resources":[1],"TargetStorage":"file-system"}').message, /"Resources"/);
    assert.match(refused('{"Resources":[],"TargetStorage":"disk"}').message, /"TargetStorage"/);
    assert.match(
      refused('{"Resources":[],"TargetStorage":"file-system","Priority":1.5}').message,
      /Priority/,
    );
    assert.match(
      refused('{"Resources":[],"TargetStorage":"file-system","Asynchronous":"yes"}').message,
      /true or false/,
    );
    assert.equal(refused("{}").status, 400);
  });
});

describe("MoveStorage job state", () => {
  it("round-trips through JSON and starts with the official content plus zero counts", () => {
    const state = initialMoveState(
      { resources: ["s"], target: "object-storage", synchronous: false, priority: 0, dryRun: false },
      {
        content: { Studies: ["s"] },
        resources: [
          ["studies", "s"],
          ["instances", "i"],
        ],
      },
    );
    assert.deepEqual(parseMoveState(JSON.stringify(state)), state);
    const content = moveContent(state);
    assert.deepEqual(content["Studies"], ["s"]);
    assert.equal(content["Resources"], 2);
    assert.equal(content["Moved"], 0);
    assert.equal(content["DryRun"], undefined);
  });

  it("starts a job over from any of its states: same resources, nothing done", () => {
    const initial = initialMoveState(
      { resources: ["s"], target: "object-storage", synchronous: false, priority: 0, dryRun: true },
      { content: { Studies: ["s"] }, resources: [["studies", "s"]] },
    );
    const advanced = { ...initial, Next: 1, WouldMove: 4, Bytes: 9, FailedCount: 1 };
    advanced.Failures = [{ Resource: "/studies/s", Attachment: "a", Error: "x" }];
    assert.deepEqual(startOverMoveState(advanced), initial);
  });

  it("refuses a state that is not a MoveStorage state of format 1", () => {
    assert.throws(
      () => parseMoveState('{"Type":"Other","Format":1,"Resources":[]}'),
      /not a MoveStorage job state/,
    );
    assert.throws(() => parseMoveState('{"Type":"MoveStorage","Format":2,"Resources":[]}'), /format 1/);
  });
});
