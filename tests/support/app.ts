import { createApp } from "../../routes/app.ts";
import { serviceDeps } from "../../routes/deps.ts";
import { parseConfig } from "../../services/config.ts";
import { openService, type Service } from "../../services/service.ts";
import type { SharpImporter } from "../../services/transform/sharp_loader.ts";

export interface TestService {
  service: Service;
  app: ReturnType<typeof createApp>;
  dataDir: string;
  /** Stops the worker, closes KV and removes the temporary directory. */
  close(): Promise<void>;
}

/**
 * The real service on an in-memory KV and a temporary data directory. The
 * worker is started unless `startWorker: false`. `env` overrides settings.
 */
export async function startTestService(
  env: Record<string, string> = {},
  opts: {
    startWorker?: boolean;
    notifyWorker?: boolean;
    withoutQueue?: boolean;
    /** Replaces `import("sharp")` (a loader that throws leaves transforms unavailable). */
    importSharp?: SharpImporter;
  } = {},
): Promise<TestService> {
  const dataDir = await Deno.makeTempDir({ prefix: "image-ingest-test-" });
  const config = parseConfig({
    DATA_DIR: dataDir,
    KV_PATH: ":memory:",
    SWEEP_INTERVAL_MS: "200",
    SHUTDOWN_GRACE_MS: "0",
    FETCH_RETRY_BASE_MS: "50",
    ...env,
  });
  // Pretend the KV is remote: no queue, so only the sweep can start work.
  if (opts.withoutQueue) config.kvIsRemote = true;
  const service = await openService(config, { importSharp: opts.importSharp });
  const app = createApp({
    ...serviceDeps(service),
    onJobCreated: opts.startWorker === false || opts.notifyWorker === false
      ? undefined
      : (id) => service.worker.notify(id),
  });
  if (opts.startWorker !== false) service.worker.start();
  return {
    service,
    app,
    dataDir,
    async close() {
      await service.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

/** The OpenAPI document exactly as the app serves it. */
export async function servedOpenApiDocument(): Promise<unknown> {
  const t = await startTestService({}, { startWorker: false });
  try {
    const res = await t.app.request("/openapi.json");
    return await res.json();
  } finally {
    await t.close();
  }
}
