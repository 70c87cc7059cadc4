import assert from "node:assert/strict";
import {
  decodePosition,
  encodePosition,
  isAfter,
  progressKey,
  START,
} from "../services/jobs/event_position.ts";

Deno.test("event ids carry the whole stream position and read back the same", () => {
  const positions = [
    START,
    { ...START, progress: progressKey("pending", 0, 0) },
    {
      stamp: "0000000000000a3f0000",
      index: 17,
      progress: progressKey("in-progress", 5, 2),
      ended: false,
    },
    {
      stamp: "0000000000000a3f0000",
      index: 0,
      progress: progressKey("cancelled", 1, 9),
      ended: true,
    },
    {
      stamp: "00000000000100000000",
      index: 99_999,
      progress: progressKey("complete", 0, 1),
      ended: true,
    },
  ];
  for (const p of positions) assert.deepEqual(decodePosition(encodePosition(p)), p);
  assert.equal(encodePosition(positions[2]), "0000000000000a3f0000.17.i.5.2");
});

Deno.test("decodePosition() refuses ids this service never sends", () => {
  for (
    const id of [
      "",
      "0.-1.p.0.0.extra",
      "0.3.p.0.0", // an index without a stamp
      "0000000000000a3f0000.-1.p.0.0", // a stamp without an index
      "0000000000000A3F0000.1.p.0.0", // versionstamps are lower-case hex
      "0.-1.q.0.0",
      "0.-1.p.-1.0",
      "0.-1.p.0.0.END",
    ]
  ) assert.equal(decodePosition(id), null, id);
});

Deno.test("isAfter() orders failures by commit, then by item index within one commit", () => {
  const p = { ...START, stamp: "0000000000000a3f0000", index: 5 };
  assert.ok(isAfter(p, "0000000000000a400000", 0));
  assert.ok(isAfter(p, "0000000000000a3f0000", 6));
  assert.ok(!isAfter(p, "0000000000000a3f0000", 5));
  assert.ok(!isAfter(p, "0000000000000a3e0000", 99));
  assert.ok(isAfter(START, "00000000000000010000", 0));
});
