/**
 * Writes the OpenAPI document the app serves to openapi/openapi.json
 * (`deno task openapi`). A test fails when the two differ.
 */
import { servedOpenApiDocument } from "../tests/support/app.ts";

const path = new URL("../openapi/openapi.json", import.meta.url);
await Deno.writeTextFile(path, JSON.stringify(await servedOpenApiDocument(), null, 2) + "\n");
console.log(`wrote ${path.pathname}`);
