import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../services/config.ts";
import { TransformError } from "../services/transform/errors.ts";
import { acceptedTypes, chooseFormat } from "../services/transform/negotiate.ts";
import {
  asksForTransform,
  paramsKey,
  parseTransformQuery,
  resolveParams,
  type TransformRequest,
} from "../services/transform/params.ts";
import { TransformPool } from "../services/transform/pool.ts";
import { SharpLoader } from "../services/transform/sharp_loader.ts";
import { SingleFlight } from "../services/transform/single_flight.ts";
import { VariantSpecsSchema } from "../services/transform/variants.ts";

const parse = (q: string) =>
  parseTransformQuery(new URLSearchParams(q), { maxPixels: 1e8, routeParams: ["url"] });

const request = (q: string): TransformRequest => {
  const ask = parse(q);
  assert.equal(ask.kind, "params");
  return (ask as { request: TransformRequest }).request;
};

const key = (q: string, format: "jpeg" | "png" | "gif" = "jpeg", accept: string | null = null) =>
  paramsKey(resolveParams(request(q), { format }, accept).params);

Deno.test("paramsKey() writes every default out, so equivalent queries share one key", () => {
  assert.equal(
    key("w=256"),
    "t1:w=256,h=,fit=inside,format=jpeg,quality=80,metadata=strip",
  );
  assert.equal(key("w=256"), key("url=x&w=256&fit=inside&format=jpeg&quality=80&metadata=strip"));
  assert.equal(key("w=256&fit=contain"), key("w=256&fit=cover"), "one side: cover = contain");
  assert.notEqual(key("w=256&h=9&fit=contain"), key("w=256&h=9&fit=cover"));
  assert.notEqual(key("w=256&fit=cover"), key("w=256"));
  assert.equal(key("format=avif"), "t1:w=,h=,fit=inside,format=avif,quality=50,metadata=strip");
  assert.equal(key("w=5", "png"), "t1:w=5,h=,fit=inside,format=png,quality=,metadata=strip");
  assert.equal(key("w=5", "gif"), key("w=5&format=webp"), "GIF sources default to WebP");
  assert.equal(key("w=5&format=auto", "jpeg", "image/webp"), key("w=5&format=webp"));
});

Deno.test("parseTransformQuery() reads a variant alone and refuses it with other parameters", () => {
  assert.deepEqual(parse("url=x&variant=thumb_2"), { kind: "variant", name: "thumb_2" });
  assert.throws(() => parse("variant=thumb&format=webp"), TransformError);
  assert.throws(() => parse("variant=" + "a".repeat(33)), TransformError);
});

Deno.test("asksForTransform() is true only for transform parameters", () => {
  assert.equal(asksForTransform(new URLSearchParams("url=x&v=2")), false);
  assert.equal(asksForTransform(new URLSearchParams("url=x&quality=2")), true);
  assert.equal(asksForTransform(new URLSearchParams("url=x&variant=a")), true);
});

Deno.test("chooseFormat() takes only named types with a weight above zero", () => {
  assert.deepEqual([...acceptedTypes("Image/AVIF;q=0.9, image/webp;q=0, */*")], [
    "image/avif",
    "*/*",
  ]);
  assert.equal(chooseFormat("image/avif,image/webp", "jpeg"), "avif");
  assert.equal(chooseFormat("image/avif,image/webp", "webp"), "webp", "may be animated");
  assert.equal(chooseFormat("*/*", "png"), "png");
  assert.equal(chooseFormat(null, "tiff"), "png");
});

Deno.test("TransformPool runs at most `concurrency` tasks, queues `queueLimit` more, refuses the rest", async () => {
  const pool = new TransformPool(2, 1);
  let open!: () => void;
  const gate = new Promise<void>((r) => open = r);
  let started = 0;
  const task = async () => {
    started++;
    await gate;
  };
  const runs = [pool.run(task), pool.run(task), pool.run(task)];
  await Promise.resolve();
  assert.deepEqual([started, pool.running, pool.waiting], [2, 2, 1]);
  await assert.rejects(pool.run(task), (e) => e instanceof TransformError && e.kind === "busy");
  open();
  await Promise.all(runs);
  assert.deepEqual([started, pool.running, pool.waiting], [3, 0, 0]);
});

Deno.test("SingleFlight shares work in flight and forgets it once settled", async () => {
  const flights = new SingleFlight<number>();
  let calls = 0;
  const work = async () => {
    calls++;
    await new Promise((r) => setTimeout(r, 5));
    return calls;
  };
  const a = flights.do("k", work);
  const b = flights.do("k", work);
  assert.deepEqual([a.joined, b.joined], [false, true]);
  assert.deepEqual(await Promise.all([a.result, b.result]), [1, 1]);
  assert.equal(flights.size, 0);
  assert.equal(await flights.do("k", work).result, 2);
});

Deno.test("SharpLoader tries once, remembers the failure and reports it once", async () => {
  let imports = 0;
  const reported: string[] = [];
  const loader = new SharpLoader(() => {
    imports++;
    return Promise.reject(new Error("cannot open shared object\nmore detail"));
  }, (reason) => reported.push(reason));
  for (let i = 0; i < 3; i++) {
    await assert.rejects(
      loader.get(),
      (e) => e instanceof TransformError && e.kind === "unavailable",
    );
  }
  assert.equal(imports, 1);
  assert.deepEqual(reported, ["cannot open shared object"]);
  assert.equal(loader.unavailable, "cannot open shared object");
  assert.equal(typeof await new SharpLoader().get(), "function");
});

Deno.test("VariantSpecsSchema: names, concrete formats, at most eight, unique", () => {
  const ok = VariantSpecsSchema.safeParse([{ name: "thumb", w: 256, format: "webp" }]);
  assert.ok(ok.success);
  const bad = (v: unknown) => assert.equal(VariantSpecsSchema.safeParse(v).success, false);
  bad([{ name: "Thumb", w: 1 }]);
  bad([{ name: "thumb", w: 1, format: "auto" }]);
  bad([{ name: "thumb", w: 0 }]);
  bad([{ name: "thumb", w: 9000 }]);
  bad([{ name: "thumb" }]);
  bad([{ name: "thumb", w: 1, extra: true }]);
  bad([{ name: "thumb", fit: "cover", format: "png" }]);
  bad([{ name: "thumb", w: 1, format: "png", quality: 5 }]);
  bad([{ name: "a", w: 1 }, { name: "a", w: 2 }]);
  bad(Array.from({ length: 9 }, (_, i) => ({ name: `v${i}`, w: 1 })));
});

Deno.test("parseConfig(): TRANSFORM_CONCURRENCY defaults to the cores, TRANSFORM_QUEUE to 64", () => {
  const defaults = parseConfig({});
  assert.equal(defaults.transformConcurrency, navigator.hardwareConcurrency);
  assert.equal(defaults.transformQueue, 64);
  const set = parseConfig({ TRANSFORM_CONCURRENCY: "3", TRANSFORM_QUEUE: "0" });
  assert.deepEqual([set.transformConcurrency, set.transformQueue], [3, 0]);
  assert.throws(() => parseConfig({ TRANSFORM_CONCURRENCY: "0" }), ConfigError);
});
