/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --profile DIR`): self time per function and
 * per package/source folder, and inclusive time of Sealgate's own functions.
 *
 *   npx tsx bench/profile-summary.ts DIR/file/CPU.*.cpuprofile [top] [messages]
 *
 * With `messages` (how many the profiled leg relayed) it also prints main-thread time per message by stage.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function area(url: string): string {
  if (!url) return '(native/vm)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const own = /\/(?:src|dist)\/(.+)\/[^/]+$/.exec(url);
  if (own && !url.includes('node:')) return `sealgate:${own[1]}`;
  if (url.startsWith('node:')) return url.split('/')[0]!.replace(/^node:internal.*/, 'node:internal');
  return url;
}

type CallFrame = ProfileNode['callFrame'];

/** Stages of a message's path, matched by source: the first that matches a sample's nearest frame wins. */
const STAGES: ReadonlyArray<[string, RegExp]> = [
  ['schema checks (zod, ajv)', /node_modules\/(zod|ajv)\//],
  ['logging (pino, log/)', /node_modules\/pino|\/src\/log\//],
  ['metrics (prom-client)', /node_modules\/prom-client|\/src\/admin\/metrics/],
  ['evidence log and hash chains', /\/src\/store\/file\/evidence|\/src\/evidence\/|evidence-chain|portal-chain/],
  ['store (records, bodies, LMDB)', /\/src\/store\/|node_modules\/lmdb\//],
  ['inbound SMTP (smtp-server, inbound/)', /node_modules\/smtp-server\/|\/src\/inbound\//],
  ['outbound SMTP (nodemailer, smtp-client/, outbound/)', /node_modules\/nodemailer\/|\/src\/smtp-client\/|\/src\/outbound\//],
  ['policy, DNS, delivery plans', /\/src\/policy\/|\/src\/dns\//],
  ['other Sealgate code', /\/src\//],
];

/**
 * Where one sample's time goes, from its stack (leaf first): idle, GC and V8 by name; module loading and
 * compiling (tsx) apart, as start-up; otherwise the stage of the frame nearest the leaf that has one, so native
 * work (TLS, socket writes, hashing) counts for the code that asked for it.
 */
export function stageOf(stack: readonly CallFrame[]): string {
  const leaf = stack[0]?.functionName;
  if (leaf === '(idle)') return 'idle';
  if (leaf === '(garbage collector)') return 'garbage collector';
  if (leaf === '(program)') return 'V8 (program)';
  if (stack.some((f) => /modules\/cjs\/loader|internal\/bootstrap|node_modules\/tsx\//.test(f.url))) return 'start-up (loading, compiling)';
  for (const frame of stack) {
    const stage = STAGES.find(([, source]) => source.test(frame.url));
    if (stage) return stage[0];
  }
  return 'node internals, TLS, sockets';
}

function main(): void {
  const [file, topArg, messagesArg] = process.argv.slice(2);
  if (!file) throw new Error('usage: profile-summary.ts FILE.cpuprofile [top]');
  const top = Number(topArg ?? 30);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const self = new Map<number, number>();
  profile.samples.forEach((id, index) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);

  const selfByFunction = new Map<string, number>();
  const selfByArea = new Map<string, number>();
  const inclusiveOwn = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|src|dist)\//, '$1/')}:${lineNumber + 1}`;
    selfByFunction.set(name, (selfByFunction.get(name) ?? 0) + us);
    selfByArea.set(area(url), (selfByArea.get(area(url)) ?? 0) + us);
    // Inclusive time of Sealgate functions: walk up once per distinct own frame.
    const seen = new Set<string>();
    for (let cursor: number | undefined = id; cursor !== undefined; cursor = parent.get(cursor)) {
      const frame = byId.get(cursor)!.callFrame;
      if (!/\/(src|dist)\//.test(frame.url) || frame.url.includes('node_modules')) continue;
      const key = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(src|dist)\//, '')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusiveOwn.set(key, (inclusiveOwn.get(key) ?? 0) + us);
    }
  }
  const print = (title: string, map: Map<string, number>, count: number): void => {
    process.stdout.write(`\n${title}\n`);
    for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) {
      process.stdout.write(`${((us / total) * 100).toFixed(1).padStart(6)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}\n`);
    }
  };
  process.stdout.write(`profile: ${(total / 1e6).toFixed(2)} s sampled over ${((profile.endTime - profile.startTime) / 1e6).toFixed(2)} s\n`);
  print('self time by area', selfByArea, 25);
  print('self time by function', selfByFunction, top);
  print('inclusive time of Sealgate functions', inclusiveOwn, top);
  if (messagesArg !== undefined) printStages(profile, byId, parent, Number(messagesArg));
}

/** Main-thread time per message by stage, idle and start-up left out of the per-message figures. */
function printStages(profile: Profile, byId: Map<number, ProfileNode>, parent: Map<number, number>, messages: number): void {
  const byStage = new Map<string, number>();
  profile.samples.forEach((id, index) => {
    const stack: CallFrame[] = [];
    for (let cursor: number | undefined = id; cursor !== undefined; cursor = parent.get(cursor)) stack.push(byId.get(cursor)!.callFrame);
    const stage = stageOf(stack);
    byStage.set(stage, (byStage.get(stage) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  const apart = new Set(['idle', 'start-up (loading, compiling)']);
  const busy = [...byStage].filter(([stage]) => !apart.has(stage)).reduce((sum, [, us]) => sum + us, 0);
  process.stdout.write(`\nmain-thread time by stage (${messages} messages; busy ${(busy / 1000 / messages).toFixed(3)} ms per message)\n`);
  for (const [stage, us] of [...byStage].sort((a, b) => b[1] - a[1])) {
    const share = apart.has(stage) ? '' : `${((us / busy) * 100).toFixed(1).padStart(5)}%  ${(us / 1000 / messages).toFixed(3)} ms/msg`;
    process.stdout.write(`${(us / 1000).toFixed(0).padStart(7)} ms  ${share.padEnd(22)}  ${stage}\n`);
  }
}

if (require.main === module) main();
