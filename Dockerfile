# The gateway as a small, non-root image. Builds on amd64, arm64 and arm/v7 (better-sqlite3 compiles
# in the build stage for the target's architecture; serialport ships its own binaries).

FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY schemas ./schemas
COPY cloud-bridge ./cloud-bridge
COPY gateway ./gateway
COPY device-sim ./device-sim
COPY test ./test
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/schemas ./dist/schemas
COPY --from=build /app/dist/cloud-bridge ./dist/cloud-bridge
COPY --from=build /app/dist/gateway ./dist/gateway
COPY --from=build /app/dist/device-sim ./dist/device-sim
COPY schemas/reefer-telemetry.avsc ./schemas/
RUN mkdir /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 1883
ENTRYPOINT ["node", "dist/gateway/cli.js"]
CMD ["--data-dir", "/data"]
