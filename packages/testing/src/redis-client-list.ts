import type { Redis } from 'ioredis';

/** One line of `CLIENT LIST`, reduced to what a leak check needs. */
export interface RedisClientInfo {
  id: number;
  name: string;
  addr: string;
  /** Last command the client ran, e.g. `bzpopmin` for an idle BullMQ worker. */
  cmd: string;
}

/** Parses the text `CLIENT LIST` returns (one client per line, `key=value` pairs). Pure. */
export function parseClientList(text: string): RedisClientInfo[] {
  const clients: RedisClientInfo[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = new Map<string, string>();
    for (const pair of line.trim().split(' ')) {
      const eq = pair.indexOf('=');
      if (eq > 0) fields.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const id = Number(fields.get('id'));
    if (!Number.isInteger(id)) continue;
    clients.push({ id, name: fields.get('name') ?? '', addr: fields.get('addr') ?? '', cmd: fields.get('cmd') ?? '' });
  }
  return clients;
}

/** The clients connected to the server `admin` talks to. */
export async function listRedisClients(admin: Redis): Promise<RedisClientInfo[]> {
  return parseClientList(String(await admin.client('LIST')));
}

/** The server's `run_id`, which changes when it restarts (client ids then start over). */
export async function readRunId(admin: Redis): Promise<string> {
  const info = await admin.info('server');
  return /^run_id:(\S+)/m.exec(info)?.[1] ?? '';
}
