// POST { schoolId } -> creates the school's WhatsApp instance and returns its first QR code.
import { json, preflight } from '../_shared/cors.ts'
import { createInstance, instanceName } from '../_shared/wpp.ts'

const WEBHOOK_URL = Deno.env.get('WPP_WEBHOOK_URL') ?? 'https://api.academyos.ru/functions/v1/wpp-webhook'

Deno.serve(async (req) => {
  const early = preflight(req)
  if (early) return early

  const { schoolId } = await req.json().catch(() => ({}))
  if (typeof schoolId !== 'string' || !schoolId) {
    return json({ error: 'schoolId is required' }, 400)
  }

  const name = instanceName(schoolId)
  const created = await createInstance(name, WEBHOOK_URL)
  console.log(`wpp-create: instance ${name} created (${created.instance.status})`)
  return json({ instance: name, qrcode: created.qrcode?.base64 ?? null })
})
