// POST { schoolId } -> makes sure the school has a WhatsApp instance, then returns a QR code
// to scan (or { connected: true }). Called by the onboarding screen of the web app.
import { json, preflight } from '../_shared/cors.ts'
import {
  connect,
  connectionState,
  createInstance,
  instanceExists,
  instanceName,
  WppError,
} from '../_shared/wpp.ts'

const WEBHOOK_URL = Deno.env.get('WPP_WEBHOOK_URL') ?? 'https://api.academyos.ru/functions/v1/wpp-webhook'

Deno.serve(async (req) => {
  const early = preflight(req)
  if (early) return early

  const { schoolId } = await req.json().catch(() => ({}))
  if (typeof schoolId !== 'string' || !schoolId) {
    return json({ error: 'schoolId is required' }, 400)
  }

  const name = instanceName(schoolId)
  try {
    if (!(await instanceExists(name))) {
      await createInstance(name, WEBHOOK_URL)
      console.log(`wpp-provision: created instance ${name}`)
    }
    const state = await connectionState(name)
    if (state.instance.state === 'open') {
      return json({ instance: name, connected: true })
    }
    const qr = await connect(name)
    return json({ instance: name, connected: false, qrcode: qr.base64 ?? null })
  } catch (err) {
    const status = err instanceof WppError ? err.status : 500
    console.error(`wpp-provision: ${name}: ${err}`)
    return json({ error: String(err) }, status)
  }
})
