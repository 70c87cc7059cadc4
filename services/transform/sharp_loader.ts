/**
 * sharp is a native addon: it may be missing for the platform, or refused
 * (Deno needs --allow-ffi to load it). It is imported on first use, so
 * without it the service still runs and only transforms answer 501, and an
 * instance that never transforms does not carry libvips (about 30 MB of
 * resident memory).
 */
import { TransformError } from "./errors.ts";

export type Sharp = typeof import("sharp").default;

/** Imports the module; replaced in tests by one that throws. */
export type SharpImporter = () => Promise<{ default: Sharp }>;

export const importSharp: SharpImporter = () => import("sharp");

/** Loads sharp once; a failure is remembered (it would fail again) and reported once. */
export class SharpLoader {
  #loading: Promise<Sharp> | undefined;
  #error: string | undefined;

  constructor(
    private readonly importer: SharpImporter = importSharp,
    private readonly onUnavailable: (reason: string) => void = () => {},
  ) {}

  /** Why sharp could not be loaded, once that is known. */
  get unavailable(): string | undefined {
    return this.#error;
  }

  /** sharp, or a TransformError ("unavailable"). */
  get(): Promise<Sharp> {
    this.#loading ??= this.importer().then(
      (mod) => {
        // Results are cached as blobs; libvips' own cache of decoded inputs
        // would only hold memory that the serving cache needs.
        mod.default.cache(false);
        return mod.default;
      },
      (err) => {
        this.#error = (err as Error).message.split("\n")[0];
        this.onUnavailable(this.#error);
        throw unavailable();
      },
    );
    return this.#loading;
  }
}

const unavailable = () =>
  new TransformError(
    "unavailable",
    "Image transforms are not available on this instance (the image library could not be " +
      "loaded). Ask without transform parameters for the original bytes.",
  );
