# syntax=docker/dockerfile:1
#
# The service's image: `docker build -t hookrelay .`
# Node 20 LTS on Debian bookworm-slim: the Node line package.json's engines names, glibc (the
# same C library our development machines and CI use, so no musl surprises in pg or crypto), and
# Debian's security updates. See docs/deployment.md.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: all dependencies, compile TypeScript to dist/ ------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The compiler needs no optional packages (the embedded PostgreSQL binaries) and no install scripts.
RUN npm ci --no-audit --no-fund --omit=optional --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies, the compiled code and the migrations --------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional leaves out @embedded-postgres/* (~60 MB of PostgreSQL server binaries): in
# production DATABASE_URL is required, so no embedded server is ever started. No production
# dependency needs an install script.
RUN npm ci --no-audit --no-fund --omit=dev --omit=optional --ignore-scripts \
 && npm cache clean --force
COPY migrations ./migrations
COPY --from=build /app/dist ./dist
# The image's own unprivileged user (uid 1000); the app writes nothing to disk.
USER node
EXPOSE 3000
# No curl in a slim image: Node asks /health itself. A ROLE=worker container serves no /health;
# give it `--no-healthcheck` (docker run) or `healthcheck: disable: true` (compose).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const r=require('http').get({host:'127.0.0.1',port:process.env.PORT||3000,path:'/health',timeout:4000},(s)=>process.exit(s.statusCode===200?0:1));r.on('error',()=>process.exit(1));r.on('timeout',()=>r.destroy())"]
# Other commands of the image, run with the same environment: node dist/db/migrate-cli.js (the
# release command), node dist/api/token-cli.js (npm run token) and
# node dist/webhooks/rotate-secrets-cli.js (npm run secrets:rotate, docs/runbook.md).
CMD ["node", "dist/main.js"]
