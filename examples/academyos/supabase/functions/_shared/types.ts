// The parts of Evolution API (WhatsApp) responses that AcademyOS uses.

export interface CreatedInstance {
  instance: { instanceName: string; instanceId: string; status: string }
  hash: string
  qrcode?: { base64: string; code: string }
}

export interface QrCode {
  base64?: string
  code?: string
  count?: number
}

export interface ConnectionState {
  instance: { instanceName: string; state: 'open' | 'connecting' | 'close' }
}
