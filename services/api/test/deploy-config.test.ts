import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { Ajv } from 'ajv';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';

/**
 * The deployment files are closed by default, and these checks keep them so (no Docker engine or
 * cluster here: `docker compose config` and `kubectl` are not available, so the files are parsed).
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

type Env = Record<string, string>;
interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Env;
  ports?: string[];
}
interface Compose {
  services: Record<string, ComposeService>;
}

/** Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}` interpolation, as `docker compose config` does it. */
function interpolate(value: string, env: Env): string {
  return value.replace(
    /\$\{(\w+)(?:(:[-?])([^}]*))?\}/g,
    (_match, name: string, op: string | undefined, arg: string) => {
      const set = env[name] !== undefined && env[name] !== '';
      if (set) return env[name] ?? '';
      if (op === ':?') throw new Error(`required variable ${name} is missing a value: ${arg}`);
      return op === ':-' ? arg : '';
    },
  );
}

/** Every string of the file interpolated; throws like compose does when a required variable is unset. */
function composeConfig(env: Env): Compose {
  const text = read('docker-compose.yml').replace(/^\s*#.*$/gm, '');
  return parse(interpolate(text, env), { merge: true }) as Compose;
}

const REQUIRED = {
  GEMBATCH_API_KEYS: 'key-for-acme-00000000:acme',
  GEMBATCH_REDIS_PASSWORD: 'c0ffee'.repeat(8),
  GRAFANA_ADMIN_USER: 'ops',
  GRAFANA_ADMIN_PASSWORD: 'grafana-password-0123',
};

describe('docker-compose.yml', () => {
  it('refuses to start without API keys, a Redis password and Grafana credentials, naming each', () => {
    for (const name of Object.keys(REQUIRED)) {
      const env: Env = { ...REQUIRED };
      delete env[name];
      expect(() => composeConfig(env), name).toThrow(new RegExp(`required variable ${name} `));
      expect(() => composeConfig({ ...REQUIRED, [name]: '' }), `${name} empty`).toThrow(name);
    }
    expect(() => composeConfig(REQUIRED)).not.toThrow();
  });

  it('passes the API keys, the Redis password (in every REDIS_URL) and the Grafana credentials through', () => {
    const { services } = composeConfig(REQUIRED);
    expect(services.api?.environment?.GEMBATCH_API_KEYS).toBe(REQUIRED.GEMBATCH_API_KEYS);
    const redisClients = Object.entries(services).filter(([, service]) => service.environment?.REDIS_URL !== undefined);
    expect(redisClients.map(([name]) => name).sort()).toEqual(['api', 'exporter', 'worker-0']);
    for (const [name, service] of redisClients)
      expect(service.environment?.REDIS_URL, name).toBe(`redis://:${REQUIRED.GEMBATCH_REDIS_PASSWORD}@redis:6379`);
    const redisCommand = services.redis?.command ?? [];
    expect(redisCommand[redisCommand.indexOf('--requirepass') + 1]).toBe(REQUIRED.GEMBATCH_REDIS_PASSWORD);
    expect(services.grafana?.environment).toMatchObject({
      GF_SECURITY_ADMIN_USER: 'ops',
      GF_SECURITY_ADMIN_PASSWORD: REQUIRED.GRAFANA_ADMIN_PASSWORD,
      GF_AUTH_ANONYMOUS_ENABLED: 'false',
    });
  });

  it('publishes only the API port, on loopback unless GEMBATCH_API_BIND says otherwise', () => {
    const { services } = composeConfig(REQUIRED);
    const published = Object.entries(services).filter(([, service]) => (service.ports ?? []).length > 0);
    expect(published.map(([name]) => name)).toEqual(['api']);
    expect(services.api?.ports).toEqual(['127.0.0.1:8080:8080']);
    expect(composeConfig({ ...REQUIRED, GEMBATCH_API_BIND: '0.0.0.0' }).services.api?.ports).toEqual([
      '0.0.0.0:8080:8080',
    ]);
    // The operator override reaches the dashboards from this host only.
    const ops = parse(read('docker-compose.ops.yml')) as Compose;
    for (const [name, service] of Object.entries(ops.services))
      for (const port of service.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:/);
  });

  it('has Prometheus scrape the API on its metrics listener, not the public port', () => {
    const { services } = composeConfig(REQUIRED);
    const port = services.api?.environment?.GEMBATCH_API_METRICS_PORT;
    expect(String(port)).toMatch(/^\d+$/);
    const prometheus = parse(read('infra/prometheus/prometheus.yml')) as {
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };
    const api = prometheus.scrape_configs.find((job) => job.job_name === 'gembatch-api');
    expect(api?.static_configs.flatMap((c) => c.targets)).toEqual([`api:${port}`]);
  });
});

describe('infra/docker/Dockerfile', () => {
  it('builds a CPU and a CUDA variant from BASE, has a HEALTHCHECK per service, and bakes no model in', () => {
    const dockerfile = read('infra/docker/Dockerfile');
    expect(dockerfile).toMatch(/^ARG BASE=node:\d+-bookworm-slim$/m);
    expect(dockerfile).toMatch(/--build-arg BASE=nvidia\/cuda:/);
    const healthcheck = /^HEALTHCHECK .*$/m.exec(dockerfile)?.[0] ?? '';
    for (const probe of ['/healthz', '/livez', '/metrics']) expect(healthcheck).toContain(probe);
    // Models come from the mounted data volume: no GGUF copied, no download at build time.
    expect(dockerfile).not.toMatch(/\.gguf|models pull|hf:/i);
    expect(dockerfile).toMatch(/^VOLUME \/data$/m);
  });

  it('runs as a numeric non-root user', () => {
    const users = read('infra/docker/Dockerfile')
      .split('\n')
      .filter((line) => /^USER\s/.test(line));
    const last = users.at(-1)?.split(/\s+/)[1] ?? '';
    expect(last).toMatch(/^\d+(:\d+)?$/);
    expect(Number(last.split(':')[0])).toBeGreaterThan(0);
  });

  it("starts a worker with UV_THREADPOOL_SIZE = its core count, at least 2, unless the operator's is set", () => {
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(read('infra/docker/Dockerfile'))?.[1] ?? '[]') as string[];
    expect(cmd.slice(0, 2)).toEqual(['sh', '-c']);
    // The image's own start line, run by a real sh, with node replaced by a print of what it would get.
    const script = (cmd[2] ?? '').replaceAll(/exec node [^;]*;;/g, 'echo "$SERVICE:${UV_THREADPOOL_SIZE:-unset}";;');
    const start = (env: Record<string, string>) => {
      const { UV_THREADPOOL_SIZE: _, ...rest } = process.env;
      return spawnSync('sh', ['-c', script], { env: { ...rest, ...env }, encoding: 'utf8' }).stdout.trim();
    };
    const cores = Number(spawnSync('nproc', { encoding: 'utf8' }).stdout.trim());
    const expected = String(Math.max(2, cores));
    expect(start({ SERVICE: 'worker' })).toBe(`worker:${expected}`);
    // libuv reads an empty value as 1 thread: the image treats it as unset.
    expect(start({ SERVICE: 'worker', UV_THREADPOOL_SIZE: '' })).toBe(`worker:${expected}`);
    expect(start({ SERVICE: 'worker', UV_THREADPOOL_SIZE: '24' })).toBe('worker:24');
    expect(start({ SERVICE: 'api' })).toBe('api:unset');
  });
});

interface Container {
  name: string;
  args?: string[];
  env?: Array<{
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
  }>;
  securityContext?: { allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } };
}
interface Workload {
  kind: string;
  metadata: { name: string };
  spec: {
    template: {
      metadata: { labels: Record<string, string> };
      spec: { securityContext?: { runAsNonRoot?: boolean; runAsUser?: number }; containers: Container[] };
    };
  };
}
interface Policy {
  kind: 'NetworkPolicy';
  metadata: { name: string };
  spec: {
    podSelector: { matchLabels?: Record<string, string> };
    policyTypes: string[];
    ingress?: Array<{
      from?: Array<{
        podSelector?: { matchLabels?: Record<string, string> };
        namespaceSelector?: { matchLabels?: Record<string, string> };
      }>;
      ports?: Array<{ port: number }>;
    }>;
  };
}

const K8S_DIR = 'infra/k8s';
const k8sFiles = readdirSync(join(ROOT, K8S_DIR)).filter((file) => file.endsWith('.yaml'));
const k8s = k8sFiles.flatMap((file) =>
  parseAllDocuments(read(join(K8S_DIR, file))).map((doc) => doc.toJS() as { kind: string }),
);
const workloads = k8s.filter((doc): doc is Workload => doc.kind === 'Deployment' || doc.kind === 'StatefulSet');
const policies = k8s.filter((doc): doc is Policy => doc.kind === 'NetworkPolicy');
const envOf = (container: Container, name: string) => container.env?.find((entry) => entry.name === name);

describe('infra/k8s', () => {
  it('kustomization applies every manifest of the folder', () => {
    const kustomization = parse(read(join(K8S_DIR, 'kustomization.yaml'))) as { resources: string[] };
    expect([...kustomization.resources].sort()).toEqual(
      k8sFiles.filter((file) => file !== 'kustomization.yaml').sort(),
    );
  });

  it('runs every pod as non-root, without privilege escalation or capabilities', () => {
    expect(workloads.map((w) => w.metadata.name).sort()).toEqual([
      'gembatch-api',
      'gembatch-exporter',
      'gembatch-worker',
      'redis',
    ]);
    for (const workload of workloads) {
      const pod = workload.spec.template.spec;
      expect(pod.securityContext?.runAsNonRoot, workload.metadata.name).toBe(true);
      expect(pod.securityContext?.runAsUser, workload.metadata.name).toBeGreaterThan(0);
      for (const container of pod.containers) {
        expect(container.securityContext?.allowPrivilegeEscalation, container.name).toBe(false);
        expect(container.securityContext?.capabilities?.drop, container.name).toEqual(['ALL']);
      }
    }
  });

  it('requires the API keys secret and a Redis password, which every REDIS_URL carries', () => {
    const containers = workloads.flatMap((w) => w.spec.template.spec.containers);
    const api = containers.find((c) => c.name === 'api');
    expect(api && envOf(api, 'GEMBATCH_API_KEYS')?.valueFrom?.secretKeyRef).toEqual({
      name: 'gembatch-api-keys',
      key: 'keys',
    });
    const clients = containers.filter((c) => envOf(c, 'REDIS_URL'));
    expect(clients.map((c) => c.name).sort()).toEqual(['api', 'exporter', 'worker']);
    for (const container of clients) {
      const names = container.env?.map((entry) => entry.name) ?? [];
      // $(REDIS_PASSWORD) is expanded only from variables defined before it.
      expect(names.indexOf('REDIS_PASSWORD'), container.name).toBeLessThan(names.indexOf('REDIS_URL'));
      expect(envOf(container, 'REDIS_PASSWORD')?.valueFrom?.secretKeyRef, container.name).toEqual({
        name: 'gembatch-redis',
        key: 'password',
      });
      expect(envOf(container, 'REDIS_URL')?.value, container.name).toBe('redis://:$(REDIS_PASSWORD)@redis:6379');
    }
    const redis = containers.find((c) => c.name === 'redis');
    expect(redis?.args?.slice(-2)).toEqual(['--requirepass', '$(REDIS_PASSWORD)']);
    expect(redis && envOf(redis, 'REDIS_PASSWORD')?.valueFrom?.secretKeyRef?.optional).toBeUndefined();
  });

  it('NetworkPolicy: ingress closed except the API port from anywhere, Redis from gembatch pods, metrics from monitoring', () => {
    const deny = policies.find(
      (p) =>
        Object.keys(p.spec.podSelector).length === 0 || Object.keys(p.spec.podSelector.matchLabels ?? {}).length === 0,
    );
    expect(deny?.spec).toMatchObject({ policyTypes: ['Ingress'] });
    expect(deny?.spec.ingress).toBeUndefined();
    // A rule with no `from` admits any source: only the API's port 8080 may have one.
    const open = policies.flatMap((p) =>
      (p.spec.ingress ?? [])
        .filter((rule) => !rule.from)
        .map((rule) => ({ pods: p.spec.podSelector.matchLabels, ports: rule.ports?.map((port) => port.port) })),
    );
    expect(open).toEqual([{ pods: { app: 'gembatch-api' }, ports: [8080] }]);

    const redisRules = policies
      .filter((p) => p.spec.podSelector.matchLabels?.app === 'redis')
      .flatMap((p) => p.spec.ingress ?? []);
    expect(redisRules).toHaveLength(1);
    expect(redisRules[0]?.from).toEqual([
      { podSelector: { matchLabels: { 'app.kubernetes.io/part-of': 'gembatch' } } },
    ]);
    // Every Redis client carries that label; no other policy selects Redis pods.
    for (const workload of workloads.filter((w) =>
      w.spec.template.spec.containers.some((c) => envOf(c, 'REDIS_URL')),
    )) {
      expect(workload.spec.template.metadata.labels['app.kubernetes.io/part-of'], workload.metadata.name).toBe(
        'gembatch',
      );
    }
    const redisLabels = workloads.find((w) => w.metadata.name === 'redis')?.spec.template.metadata.labels ?? {};
    const selectingRedis = policies.filter(
      (p) =>
        Object.entries(p.spec.podSelector.matchLabels ?? {}).length > 0 &&
        Object.entries(p.spec.podSelector.matchLabels ?? {}).every(([k, v]) => redisLabels[k] === v),
    );
    expect(selectingRedis.map((p) => p.metadata.name)).toEqual(['redis-from-gembatch']);
    const metrics = policies.find((p) => p.metadata.name === 'metrics-from-monitoring');
    expect(metrics?.spec.ingress?.[0]?.from).toEqual([
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ]);
  });
});

describe('infra/k8s workers: stuck and draining nodes', () => {
  interface ProbedContainer extends Container {
    livenessProbe?: { httpGet?: { path: string; port: string } };
    readinessProbe?: { httpGet?: { path: string; port: string } };
    ports?: Array<{ name: string; containerPort: number }>;
  }
  const worker = workloads.find((w) => w.kind === 'Deployment' && w.metadata.name === 'gembatch-worker');
  const podSpec = worker?.spec.template.spec as { terminationGracePeriodSeconds?: number } | undefined;
  const container = worker?.spec.template.spec.containers.find((c): c is ProbedContainer => c.name === 'worker');

  it('liveness is /livez on the watchdog port, readiness the metrics listener that starts once the model is loaded', () => {
    expect(container?.livenessProbe?.httpGet).toEqual({ path: '/livez', port: 'livez' });
    expect(container?.readinessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(container?.ports).toEqual(
      expect.arrayContaining([
        { name: 'livez', containerPort: 9466 },
        { name: 'metrics', containerPort: 9465 },
      ]),
    );
  });

  it('the pod grace period is above the drain grace, and a PodDisruptionBudget drains one worker at a time', () => {
    const drain = Number(container && envOf(container, 'GEMBATCH_SHUTDOWN_GRACE_SECONDS')?.value);
    expect(drain).toBeGreaterThan(0);
    expect(podSpec?.terminationGracePeriodSeconds).toBeGreaterThan(drain);
    const budget = k8s.find((doc) => doc.kind === 'PodDisruptionBudget') as
      | { spec: { maxUnavailable?: number; selector: { matchLabels: Record<string, string> } } }
      | undefined;
    expect(budget?.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: { app: 'gembatch-worker' } } });
  });
});

/** `apiVersion/kind` → the model whose `validate()` checks a manifest against its OpenAPI schema (Kubernetes 1.27, KEDA). */
const K8S_MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
};
const KUBECTL = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
if (!KUBECTL)
  console.warn(
    'kubectl not found: skipping the kustomize-rendered Kubernetes schema check (apt-get install kubernetes-client)',
  );

/** Renders `dir` with `kubectl kustomize` and returns every schema problem, one line each (`Kind/name: path message`). */
function kubernetesSchemaProblems(dir: string): string[] {
  const rendered = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (rendered.status !== 0) return [`kubectl kustomize ${dir}: ${rendered.stderr.trim()}`];
  const problems: string[] = [];
  for (const doc of parseAllDocuments(rendered.stdout)) {
    const manifest = doc.toJS() as { apiVersion: string; kind: string; metadata?: { name?: string } };
    const where = `${manifest.kind}/${manifest.metadata?.name ?? '?'}`;
    const Model = K8S_MODELS[`${manifest.apiVersion}/${manifest.kind}`];
    if (!Model) {
      problems.push(`${where}: no schema for ${manifest.apiVersion} ${manifest.kind}; add its model to K8S_MODELS`);
      continue;
    }
    try {
      new Model(manifest as never).validate();
    } catch (error) {
      problems.push(`${where}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return problems;
}

/** Validates a compose document against the vendored Compose Specification schema (infra/schemas/README.md). */
function composeSchemaProblems(document: unknown): string[] {
  // The schema names draft-07 by its https URI, which ajv does not know: its meta-schema check is skipped (the schema
  // is vendored, not user input); formats (durations) are not checked.
  const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false, validateFormats: false });
  const validate = ajv.compile(JSON.parse(read('infra/schemas/compose-spec.json')) as object);
  if (validate(document)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

describe('deployment files against their schemas', () => {
  it('docker-compose.yml (interpolated, as docker compose config) and the ops override follow the Compose Specification', () => {
    expect(composeSchemaProblems(composeConfig(REQUIRED))).toEqual([]);
    expect(composeSchemaProblems(parse(read('docker-compose.ops.yml')))).toEqual([]);
  });

  it('a broken compose file fails the check', () => {
    const problems = composeSchemaProblems(parse(read('services/api/test/fixtures/broken-compose.yml')));
    expect(problems.join('\n')).toMatch(/\/services\/api\/ports must be array/);
  });

  it.skipIf(!KUBECTL)(
    'every manifest kustomize renders from infra/k8s follows the Kubernetes (and KEDA) schema of its API version',
    () => {
      expect(kubernetesSchemaProblems(join(ROOT, K8S_DIR))).toEqual([]);
    },
  );

  it.skipIf(!KUBECTL)('a broken manifest fails the check', () => {
    const problems = kubernetesSchemaProblems(join(ROOT, 'services/api/test/fixtures/broken-k8s'));
    expect(problems.join('\n')).toMatch(/Deployment\/gembatch-worker: .*replicas must be integer/);
    expect(problems.join('\n')).toMatch(/required property 'selector'|required property selector/);
  });
});
