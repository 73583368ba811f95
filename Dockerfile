# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev toolchain.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
RUN npm run build

# Runtime stage: production dependencies and compiled code only, as a non-root user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY config ./config
# The queue, the evidence log (file store) and scheduled reports each get their own volume (evidence outlives the queue).
RUN mkdir -p /app/queue /app/evidence /app/reports && chown -R node:node /app/queue /app/evidence /app/reports
USER node
VOLUME ["/app/queue", "/app/evidence", "/app/reports"]
# SMTP listeners, then the admin API (/metrics, /healthz, /readyz).
EXPOSE 2587 2465 2525 8025
ENV SEALGATE_CONFIG=/app/config/docker.yaml
# /healthz needs no token. Stop with a grace period above delivery.shutdownGrace (docker stop -t 60).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8025/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/sealgate"]
CMD ["start"]
