import type { FastifyInstance } from 'fastify';
import type { ConfigStatus, ReloadResult } from '../../config/live';
import { ConfigError } from '../../config/load';
import type { AdminContext } from '../context';

export interface ConfigAdmin {
  status(): ConfigStatus;
  reload(): Promise<ReloadResult>;
}

/** The running config (digest, load time, reload counts) and reloading it, as SIGHUP and `sealgate reload` do. */
export function registerConfigRoutes(app: FastifyInstance, ctx: AdminContext, config: ConfigAdmin | undefined): void {
  app.get('/config', { config: { scope: 'read' }, schema: { tags: ['config'], summary: 'The running config: file, digest, load time, reload counts' } }, async (_request, reply) => {
    if (!config) return reply.code(503).send({ error: 'unavailable', message: 'this admin API is not attached to a running relay' });
    return config.status();
  });

  app.post(
    '/reload',
    {
      config: { scope: 'operate' },
      schema: {
        tags: ['config'],
        summary: 'Re-read the config file and apply what can change live; 409 names the settings that need a restart, 422 a file that does not validate',
      },
    },
    async (request, reply) => {
      if (!config) return reply.code(503).send({ error: 'unavailable', message: 'this admin API is not attached to a running relay' });
      try {
        const result = await config.reload();
        await ctx.recordAction(request, { action: 'config-reload', id: result.digest, previousDigest: result.previousDigest, changed: result.changed });
        return { reloaded: true, ...result };
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        const restartKeys = 'restartKeys' in err ? (err.restartKeys as string[]) : [];
        await ctx.recordAction(request, { action: 'config-reload-refused', id: config.status().digest, reason: err.message });
        return reply.code(restartKeys.length > 0 ? 409 : 422).send({ error: 'reload-refused', message: err.message, restartKeys, digest: config.status().digest });
      }
    },
  );
}
