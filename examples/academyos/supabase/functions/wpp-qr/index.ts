// GET ?schoolId=… -> a fresh QR code for the school's WhatsApp instance.
import { json, preflight } from '../_shared/cors.ts'
import { connect, instanceName, WppError } from '../_shared/wpp.ts'

Deno.serve(async (req) => {
  const early = preflight(req)
  if (early) return early

  const schoolId = new URL(req.url).searchParams.get('schoolId')
  if (!schoolId) {
    return json({ error: 'schoolId is required' }, 400)
  }

  try {
    const qr = await connect(instanceName(schoolId))
    return json({ qrcode: qr.base64 ?? null, attempt: qr.count ?? 0 })
  } catch (err) {
    console.error(`wpp-qr: ${schoolId}: ${err}`)
    return json({ error: String(err) }, err instanceof WppError ? err.status : 500)
  }
})
