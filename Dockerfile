# reefer-edge as a small, non-root image: the gateway by default, the reefer-sim simulator with
# another command. Builds for linux/amd64, linux/arm64 and linux/arm/v7:
#
#   docker buildx build --platform linux/arm64,linux/arm/v7 -t reefer-edge .
#
# TypeScript compiles once, on the build machine's own platform; the runtime dependencies install on
# the target's, so better-sqlite3 compiles for the Pi's architecture (serialport ships binaries for
# all three). Where no base image can be pulled, deploy/build-image.sh builds this file with
# podman/buildah on a local base passed as NODE_IMAGE. How to run it: docs/container.md.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- compile: TypeScript to dist/, platform-independent ------------------------------------------
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS compile
WORKDIR /app
COPY package.json package-lock.json ./
# The compiler needs no native module, and any built here would be for the wrong platform.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY schemas ./schemas
COPY cloud-bridge ./cloud-bridge
COPY gateway ./gateway
COPY device-sim ./device-sim
RUN npm run build

# --- deps: production node_modules for the target platform ---------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# better-sqlite3 always compiles from source against the headers that come with Node, so the build
# downloads neither a prebuilt binary nor Node's headers. Only the addon itself is kept from its build
# (the rest, SQLite's sources and objects, is ~12 MB), and it must load before the stage ends.
ENV npm_config_nodedir=/usr/local \
    npm_config_build_from_source=better-sqlite3
RUN npm ci --omit=dev --no-audit --no-fund \
 && cd node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node . \
 && rm -rf build deps src \
 && mkdir -p build/Release \
 && mv better_sqlite3.node build/Release/ \
 && cd /app \
 && node -e "new (require('better-sqlite3'))(':memory:').close()" \
 && npm cache clean --force \
 && mkdir /data

# --- runtime ---------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
# The memory settings of deploy/reefer-gateway.service, which only the environment can give: fewer
# malloc arenas and one V8 helper thread (the gateway sizes its heap itself). The gateway holds 2,000
# devices connected in about 89 MB with them (docs/performance.md). The simulator and the analytics
# commands run with them too, which suits them.
ENV NODE_ENV=production \
    REEFER_DATA_DIR=/data \
    MALLOC_ARENA_MAX=2 \
    NODE_OPTIONS=--v8-pool-size=1
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps --chown=node:node /data /data
COPY package.json ./
COPY schemas/*.avsc ./schemas/
COPY --from=compile /app/dist/schemas ./dist/schemas
COPY --from=compile /app/dist/cloud-bridge ./dist/cloud-bridge
COPY --from=compile /app/dist/gateway ./dist/gateway
COPY --from=compile /app/dist/device-sim ./dist/device-sim
USER node
VOLUME ["/data"]
# 1883: the embedded MQTT broker (mqtt.port); 8080: /healthz, /readyz and /metrics (http.port).
EXPOSE 1883 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.REEFER_HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The simulator: node dist/device-sim/cli.js --mqtt-url mqtt://<gateway>:1883 ...
CMD ["node", "dist/gateway/cli.js"]
