# The service on the official Deno image. No Docker engine runs where this
# was written, so it is kept small and plain.
FROM denoland/deno:2.9.6

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when they change.
COPY deno.json deno.lock ./
RUN deno install --frozen

COPY . .
RUN deno cache --frozen main.ts \
  && mkdir -p /data \
  && chown -R deno:deno /data

USER deno
ENV HOSTNAME=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["deno", "eval", "const r = await fetch('http://127.0.0.1:8000/healthz'); Deno.exit(r.ok ? 0 : 1)"]

# Explicit permissions rather than -A: network, the data volume, the app's own
# files (Scalar's bundle in node_modules), the environment, and FFI for sharp's
# native addon (without it the service runs and transforms answer 501).
CMD ["deno", "run", "--allow-net", "--allow-read=/app,/data", "--allow-write=/data", \
     "--allow-env", "--allow-ffi", "main.ts"]
