// GET ?schoolId=… -> { state: 'open' | 'connecting' | 'close' } of the school's WhatsApp.
import { json, preflight } from '../_shared/cors.ts'
import { connectionState, instanceName, WppError } from '../_shared/wpp.ts'

Deno.serve(async (req) => {
  const early = preflight(req)
  if (early) return early

  const schoolId = new URL(req.url).searchParams.get('schoolId')
  if (!schoolId) {
    return json({ error: 'schoolId is required' }, 400)
  }

  try {
    const { instance } = await connectionState(instanceName(schoolId))
    return json({ state: instance.state })
  } catch (err) {
    console.error(`wpp-status: ${schoolId}: ${err}`)
    return json({ error: String(err) }, err instanceof WppError ? err.status : 500)
  }
})
