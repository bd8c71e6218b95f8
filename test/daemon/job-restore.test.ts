// The jobs the bridge keeps for the daemon: JOB_RESTORE tells the bridge whether a job Orthanc stored is
// ours, or starts one over; JOB_STEP runs a step on the state in the serialization the bridge sends back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { jobRestoreAnswer, jobStepAnswer, restoreJob, startingOver } from "../../src/daemon/job-restore.js";
import {
  JobStepStatus,
  SERIALIZED_JOB_FORMAT,
  decodeJobAnswer,
  decodeJobRequest,
  encodeJobRequest,
  serializeJob,
} from "../../src/daemon/protocol.js";

describe("restoreJob", () => {
  it("reads back the bridge's serialization, as Orthanc re-wrote it", () => {
    const serialized = `{\n   "Content" : {"Instances" : ["a"]},\n   "Format" : "${SERIALIZED_JOB_FORMAT}",\n   "State" : {"Next" : 3}\n}`;
    const restored = { content: '{"Instances":["a"]}', state: '{"Next":3}' };
    assert.deepEqual(restoreJob({ type: "MoveStorage", serialized }), restored);
    // An older bridge's serialization also held the initial state, for a reset: the job still comes back.
    const older = serialized.replace('"State"', '"InitialState" : {"Next" : 0},\n   "State"');
    assert.deepEqual(restoreJob({ type: "MoveStorage", serialized: older }), restored);
  });

  it("says another plugin's job, or text that is not JSON, is not ours", () => {
    assert.equal(restoreJob({ type: "MoveStorage", serialized: '{"Format":"other"}' }), undefined);
    assert.equal(restoreJob({ type: "MoveStorage", serialized: "[1]" }), undefined);
    assert.equal(restoreJob({ type: "MoveStorage", serialized: "not json" }), undefined);
  });

  it("refuses one of ours that lacks its state", () => {
    const serialized = JSON.stringify({ Format: SERIALIZED_JOB_FORMAT, Content: {} });
    assert.throws(() => restoreJob({ type: "MoveStorage", serialized }), /incomplete/);
  });

  it("frames the request and the answer as the bridge reads them", () => {
    const request = { type: "MoveStorage", serialized: '{"Format":"x"}' };
    assert.deepEqual(decodeJobRequest(encodeJobRequest(request)), request);
    const serialized = serializeJob({ content: "{}", state: '{"a":1}' });
    assert.deepEqual(decodeJobAnswer(jobRestoreAnswer({ type: "MoveStorage", serialized }, false)), {
      status: JobStepStatus.Continue,
      progress: 0,
      content: "{}",
      serialized,
    });
    assert.equal(jobRestoreAnswer(request, false).length, 0, "not ours: an empty answer");
  });

  it("starts a job Orthanc reset over: its state wrapped, its content kept", () => {
    const serialized = serializeJob({ content: '{"Moved":2}', state: '{"Next":3}' });
    const answer = decodeJobAnswer(jobRestoreAnswer({ type: "MoveStorage", serialized }, true));
    assert.equal(answer.content, '{"Moved":2}');
    assert.deepEqual(restoreJob({ type: "MoveStorage", serialized: answer.serialized }), {
      content: '{"Moved":2}',
      state: '{"StartOver":{"Next":3}}',
    });
  });
});

describe("jobStepAnswer", () => {
  const serialized = serializeJob({ content: '{"Moved":0}', state: '{"Next":0}' });

  it("runs the step on the job's state and serializes what it decided", async () => {
    const states: string[] = [];
    const answer = decodeJobAnswer(
      await jobStepAnswer({ type: "MoveStorage", serialized }, (state) => {
        states.push(state);
        const decided = { content: '{"Moved":1}', state: '{"Next":1}' };
        return Promise.resolve({ status: JobStepStatus.Continue, progress: 0.5, ...decided });
      }),
    );
    assert.deepEqual(states, ['{"Next":0}']);
    assert.deepEqual(answer, {
      status: JobStepStatus.Continue,
      progress: 0.5,
      content: '{"Moved":1}',
      serialized: serializeJob({ content: '{"Moved":1}', state: '{"Next":1}' }),
    });
  });

  it("keeps the content and the state a step leaves empty", async () => {
    const step = () =>
      Promise.resolve({ status: JobStepStatus.Success, progress: 1, content: "", state: "" });
    const answer = decodeJobAnswer(await jobStepAnswer({ type: "MoveStorage", serialized }, step));
    assert.equal(answer.content, '{"Moved":0}');
    assert.equal(answer.serialized, serialized);
  });

  it("refuses a serialization that is not one of ours, naming the job's type", async () => {
    const step = () => assert.fail("no step runs");
    await assert.rejects(jobStepAnswer({ type: "MoveStorage", serialized: '{"n":0}' }, step), /MoveStorage/);
  });
});

describe("startingOver", () => {
  it("unwraps the state of a job Orthanc reset, once or more, and leaves others as they are", () => {
    assert.deepEqual(startingOver('{"Next":3}'), { state: '{"Next":3}', startOver: false });
    assert.deepEqual(startingOver('{"StartOver":{"Next":3}}'), { state: '{"Next":3}', startOver: true });
    assert.deepEqual(startingOver('{"StartOver":{"StartOver":{"Next":3}}}'), {
      state: '{"Next":3}',
      startOver: true,
    });
    assert.deepEqual(startingOver("not json"), { state: "not json", startOver: false });
  });
});
