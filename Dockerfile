# msc-gateway (issue 7). Build: docker build -t msc-gateway .   Run: see docker-compose.yml and docs/engineer.md.
# Docker cannot run on the project's build machines; the compose test (test/integration/deploy-compose.test.ts)
# checks this file and docker-compose.yml against the gateway's configuration instead.

# --- build: compile TypeScript and the web screens, then drop dev dependencies ---
FROM node:20.18.1-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 downloads a prebuilt binary; these let it compile from source when none fits.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY . .
RUN npm rebuild better-sqlite3 && npm run build && npm prune --omit=dev

# --- runtime: no compiler, no sources, a non-root user ---
FROM node:20.18.1-bookworm-slim
ENV NODE_ENV=production \
    MSC_HTTP=0.0.0.0:8080 \
    MSC_DATA_DIR=/var/lib/msc-gateway
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/device-sim/scenarios ./device-sim/scenarios
# The image's `node` user (uid 1000) owns the data directory and nothing else.
RUN mkdir -p /var/lib/msc-gateway && chown node:node /var/lib/msc-gateway
USER node
VOLUME ["/var/lib/msc-gateway"]
EXPOSE 8080
# /healthz answers 200 while the process is live; `ready` and `reasons` in its body tell the rest.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli/index.js"]
