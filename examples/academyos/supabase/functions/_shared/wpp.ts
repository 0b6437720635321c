// A small client for the Evolution API that connects schools' WhatsApp numbers.
import type { ConnectionState, CreatedInstance, QrCode } from './types.ts'

const EVOLUTION_URL = Deno.env.get('EVOLUTION_API_URL') ?? 'https://wpp.academyos.ru'
const EVOLUTION_KEY = Deno.env.get('EVOLUTION_API_KEY') ?? ''
// Evolution answers within a second or two when healthy. When it hangs, Kong gave up
// after 60 s with a 504 and nothing in our logs; now we give up first and say why.
const TIMEOUT_MS = Number(Deno.env.get('EVOLUTION_TIMEOUT_MS') ?? '15000')

export class WppError extends Error {
  constructor(message: string, readonly status = 502) {
    super(message)
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response
  try {
    res = await fetch(`${EVOLUTION_URL}${path}`, {
      method,
      headers: { apikey: EVOLUTION_KEY, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    })
  } catch (err) {
    if (err instanceof DOMException && err.name === 'TimeoutError') {
      throw new WppError(`Evolution API: no answer to ${method} ${path} within ${TIMEOUT_MS} ms`, 504)
    }
    throw new WppError(`Evolution API unreachable: ${err}`)
  }
  if (!res.ok) {
    throw new WppError(`Evolution API: ${method} ${path} answered HTTP ${res.status}: ${await res.text()}`)
  }
  return (await res.json()) as T
}

/** The Evolution instance name of a school. */
export function instanceName(schoolId: string): string {
  return `academyos-${schoolId}`
}

export function createInstance(name: string, webhookUrl: string): Promise<CreatedInstance> {
  return call('POST', '/instance/create', {
    instanceName: name,
    integration: 'WHATSAPP-BAILEYS',
    qrcode: true,
    webhook: { url: webhookUrl, byEvents: false, events: ['MESSAGES_UPSERT', 'CONNECTION_UPDATE'] },
  })
}

export function connect(name: string): Promise<QrCode> {
  return call('GET', `/instance/connect/${encodeURIComponent(name)}`)
}

export function connectionState(name: string): Promise<ConnectionState> {
  return call('GET', `/instance/connectionState/${encodeURIComponent(name)}`)
}

export async function instanceExists(name: string): Promise<boolean> {
  const found = await call<Array<{ name: string }>>(
    'GET',
    `/instance/fetchInstances?instanceName=${encodeURIComponent(name)}`,
  )
  return found.length > 0
}
