export interface Instance { id: string; status: string }
